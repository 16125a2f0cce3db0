//! Black-box tests of Open311 GeoReport v2 at `/open311/v2`, written from the
//! specification: a real server on a socket, spoken to over HTTP with form-encoded
//! bodies like any 311 client would. Each test runs on every engine available
//! (PostgreSQL when `LIANXIN_TEST_DATABASE_URL` is set).
//!
//! The app is built here rather than with `common::spawn_app` because the desk reads
//! categories and routing rules when the state is built: the fixtures must exist
//! before that. Keeping the state also lets a test move a demand along the loop the
//! way a unit would, to see how GeoReport reports it.

use chrono::{Duration, SecondsFormat, Utc};
use lianxin_domain::draft::{OrgDraft, PlaceDraft, RawOrg, RawPlace};
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::{DataScope, Role};
use lianxin_server::desk::{Action, Intake, StepBy, Submitter};
use lianxin_server::{router, AppState, Settings};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use lianxin_store::demands::Category;
use lianxin_store::testing::{engines, TestStore};
use lianxin_store::Engine;
use quick_xml::events::Event;
use serde_json::{json, Value};
use std::collections::BTreeSet;

macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for engine in engines() {
                    let app = spawn(engine).await;
                    cases::$name(&app).await;
                }
            }
        )*
    };
}

on_every_engine!(
    discovery_names_this_endpoint,
    services_list_active_categories,
    service_definitions_carry_attributes,
    a_request_is_filed_and_readable,
    api_key_is_checked,
    submissions_are_validated,
    attributes_are_checked_against_the_definition,
    listing_filters,
    one_request_and_tokens,
    status_notes_follow_the_loop,
    user_text_cannot_break_the_documents,
    unknown_paths_and_formats_are_404,
    location_forms_can_alternate,
    retries_with_an_idempotency_key_file_once,
);

const KY: &str = "150207.BYXL.KY";
const HX: &str = "150207.BYXL.HX";
const KY_POINT: (&str, &str) = ("40.6001", "109.8001");

struct App {
    base: String,
    state: AppState,
    store: TestStore,
    /// A token with the `open311` scope.
    key: String,
    /// The street office every demand routes to.
    street: i64,
    /// A community committee a demand can be assigned to.
    hx: i64,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}/open311/v2/{path}", self.base)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.unwrap()
    }

    /// GET a `.json` path that must succeed.
    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        assert_content_type(&r, "application/json; charset=utf-8");
        r.json().await.unwrap()
    }

    /// GET a `.xml` path that must succeed, parsed.
    async fn xml(&self, path: &str) -> El {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        assert_content_type(&r, "text/xml; charset=utf-8");
        parse_xml(&r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Files a request with the `open311` key plus `form`; returns its id and token.
    async fn file(&self, form: &[(&str, &str)]) -> (String, String) {
        let mut all = vec![("api_key", self.key.as_str())];
        all.extend_from_slice(form);
        let r = self.post("requests.json", &all).await;
        assert_eq!(r.status(), 200, "filing {form:?}");
        let body: Value = r.json().await.unwrap();
        (
            body[0]["service_request_id"].as_str().unwrap().to_string(),
            body[0]["token"].as_str().unwrap().to_string(),
        )
    }

    async fn ids(&self, query: &str) -> BTreeSet<String> {
        ids(&self.json(&format!("requests.json?{query}")).await)
    }

    async fn demand_count(&self) -> usize {
        self.store
            .search_demands(&lianxin_store::demands::DemandQuery {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }

    /// A unit (acting for every unit) takes a step on demand `id`.
    async fn act(&self, id: &str, action: Action) {
        let by = StepBy {
            actor: "account:1".into(),
            name: "tester".into(),
            units: None,
        };
        self.state
            .desk
            .act(id.parse().unwrap(), by, action)
            .await
            .unwrap();
    }
}

fn assert_content_type(r: &reqwest::Response, want: &str) {
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(want)
    );
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a bare array")
        .iter()
        .map(|r| r["service_request_id"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Asserts a JSON Open311 error: this status, a one-element array whose code is the
/// status as a string; returns the description.
async fn expect_fail(r: reqwest::Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status);
    assert_content_type(&r, "application/json; charset=utf-8");
    let body: Value = r.json().await.expect("an error array");
    let list = body.as_array().expect("errors are a bare array");
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["code"], json!(status.to_string()), "{body}");
    let d = list[0]["description"].as_str().unwrap_or_default();
    assert!(!d.is_empty(), "{body}");
    d.to_string()
}

/// The same for XML errors.
async fn expect_xml_fail(r: reqwest::Response, status: u16) -> El {
    assert_eq!(r.status().as_u16(), status);
    assert_content_type(&r, "text/xml; charset=utf-8");
    let doc = parse_xml(&r.text().await.unwrap());
    assert_eq!(doc.name, "errors");
    assert_eq!(doc.children.len(), 1);
    let e = doc.child("error");
    assert_eq!(e.child("code").text, status.to_string());
    assert!(!e.child("description").text.is_empty());
    doc
}

// ----- a small XML tree, parsed by a real parser -----

#[derive(Debug, Default)]
struct El {
    name: String,
    text: String,
    children: Vec<El>,
}

impl El {
    fn child(&self, name: &str) -> &El {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
    }

    /// Every element named `name` at any depth.
    fn all(&self, name: &str) -> Vec<&El> {
        let mut out = Vec::new();
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            out.extend(c.all(name));
        }
        out
    }
}

/// Parses a whole document (panicking if it is not well-formed) into its root.
fn parse_xml(s: &str) -> El {
    let mut reader = quick_xml::Reader::from_str(s);
    let mut stack = vec![El::default()];
    let name = |raw: &[u8]| String::from_utf8(raw.to_vec()).unwrap();
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("bad XML {e}: {s}"))
        {
            Event::Start(e) => stack.push(El {
                name: name(e.name().as_ref()),
                ..El::default()
            }),
            Event::End(_) => {
                let el = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(el);
            }
            Event::Empty(e) => stack.last_mut().unwrap().children.push(El {
                name: name(e.name().as_ref()),
                ..El::default()
            }),
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.decode().unwrap())
                        .expect("only the predefined entities")
                        .to_string(),
                };
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::Decl(_) => {}
            Event::Eof => break,
            other => panic!("unexpected XML event {other:?} in {s}"),
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements in {s}");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element in {s}");
    doc.children.pop().unwrap()
}

// ----- the app and its fixtures -----

async fn spawn(engine: Engine) -> App {
    let store = TestStore::new(engine).await.unwrap();
    let actor = Actor::system("test");
    let all = DataScope::everything();
    let mut root = 0;
    for (code, name, level, parent, point) in [
        ("150000", "内蒙古自治区", "region", None, (40.8, 111.7)),
        ("150200", "包头市", "city", Some("150000"), (40.66, 109.84)),
        (
            "150207",
            "九原区",
            "county",
            Some("150200"),
            (40.61, 109.97),
        ),
        (
            "150207.BYXL",
            "白音席勒街道",
            "town",
            Some("150207"),
            (40.64, 109.87),
        ),
        (
            KY,
            "开元社区",
            "village",
            Some("150207.BYXL"),
            (40.6, 109.8),
        ),
        (
            HX,
            "和谐社区",
            "village",
            Some("150207.BYXL"),
            (40.7, 109.9),
        ),
    ] {
        let d = PlaceDraft::parse(&RawPlace {
            code: code.into(),
            name: name.into(),
            level: level.into(),
            parent_code: parent.map(Into::into),
            lat: Some(point.0),
            lon: Some(point.1),
        })
        .unwrap();
        let p = store.create_place(&actor, &all, &d).await.unwrap();
        if parent.is_none() {
            root = p.id;
        }
    }
    let org = |code: &str, name: &str, serves: &str| {
        let d = OrgDraft::parse(&RawOrg {
            code: code.into(),
            name: name.into(),
            kind: "party_committee".into(),
            parent_code: None,
            serves: vec![serves.into()],
        })
        .unwrap();
        let store = &store;
        let (actor, all) = (actor.clone(), all.clone());
        async move { store.create_org(&actor, &all, &d).await.unwrap().id }
    };
    let street = org("BYXL-GW", "白音席勒街道党工委", "150207.BYXL").await;
    let hx = org("HX-DW", "和谐社区党委", HX).await;
    store
        .create_routing_rule(&actor, None, root, street)
        .await
        .unwrap();
    for c in categories() {
        store.upsert_category(&actor, &c).await.unwrap();
    }
    let account = store
        .create_account(
            &actor,
            &NewAccount {
                username: "app311".into(),
                display_name: "311 app".into(),
                password_hash: "!".into(),
                role: Role::UnitStaff,
                scope_place_code: None,
                scope_org_code: None,
                person_id: None,
            },
        )
        .await
        .unwrap();
    let (key, _) = lianxin_server::api::issue_token(
        &store,
        &actor,
        "311 app",
        account.id,
        &["open311".into()],
        None,
    )
    .await
    .unwrap();
    let state = AppState::new(
        store.store.clone(),
        PiiKey::from_master(&[9; 32]),
        Settings::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    App {
        base: format!("http://{addr}"),
        state,
        store,
        key,
        street,
        hx,
    }
}

fn categories() -> Vec<Category> {
    let base = |code: &str, zh: &str, en: &str, attributes: Value, active: bool| Category {
        code: code.into(),
        name_zh: zh.into(),
        name_en: en.into(),
        description: format!("{zh} ({en})"),
        default_urgency: lianxin_domain::demand::Urgency::Ordinary,
        attributes,
        keywords: "test".into(),
        sort: 0,
        active,
    };
    vec![
        base(
            "streetlight",
            "路灯故障",
            "Street light out",
            json!([
                {"code": "hazards", "order": 2, "variable": true, "datatype": "multivaluelist",
                 "required": false, "description": "有何危险",
                 "values": [{"key": "dark", "name": "太暗"}, {"key": "sparks", "name": "冒火花"},
                            {"key": "fallen", "name": "倒伏"}]},
                {"code": "lamp", "order": 1, "variable": true, "datatype": "singlevaluelist",
                 "required": true, "description": "灯的种类",
                 "values": [{"key": "led", "name": "LED 灯"}, {"key": "sodium", "name": "钠灯"}]},
                {"code": "safety", "order": 3, "variable": false, "datatype": "string",
                 "required": false, "description": "夜间请远离倒伏的灯杆"},
            ]),
            true,
        ),
        base("garbage", "垃圾清运", "Garbage", json!([]), true),
        base("retired", "停用类别", "Retired", json!([]), false),
    ]
}

/// A streetlight request's required answer.
const LAMP: (&str, &str) = ("attribute[lamp]", "led");

mod cases {
    use super::*;

    pub async fn discovery_names_this_endpoint(app: &App) {
        let d = app.json("discovery.json").await;
        let ep = &d["endpoints"][0];
        assert_eq!(ep["specification"], "http://wiki.open311.org/GeoReport_v2");
        assert_eq!(ep["url"], json!(format!("{}/open311/v2", app.base)));
        let formats: Vec<&str> = ep["formats"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(formats, vec!["text/xml", "application/json"]);
        assert!(d["changeset"].as_str().is_some_and(|c| !c.is_empty()));

        let x = app.xml("discovery.xml").await;
        assert_eq!(x.name, "discovery");
        let ep = x.child("endpoints").child("endpoint");
        assert_eq!(ep.child("url").text, format!("{}/open311/v2", app.base));
        let formats: Vec<&str> = ep.all("format").iter().map(|f| f.text.as_str()).collect();
        assert_eq!(formats, vec!["text/xml", "application/json"]);
    }

    pub async fn services_list_active_categories(app: &App) {
        let list = app.json("services.json").await;
        let list = list.as_array().expect("a bare array");
        let codes: BTreeSet<&str> = list
            .iter()
            .filter_map(|s| s["service_code"].as_str())
            .collect();
        assert_eq!(codes, BTreeSet::from(["garbage", "streetlight"]));
        let light = list
            .iter()
            .find(|s| s["service_code"] == "streetlight")
            .unwrap();
        assert_eq!(light["service_name"], "路灯故障");
        assert_eq!(light["metadata"], true);
        assert_eq!(light["type"], "realtime");
        let garbage = list
            .iter()
            .find(|s| s["service_code"] == "garbage")
            .unwrap();
        assert_eq!(garbage["metadata"], false);

        let x = app.xml("services.xml").await;
        assert_eq!(x.name, "services");
        assert_eq!(x.children.len(), 2);
        let light = x
            .all("service")
            .into_iter()
            .find(|s| s.child("service_code").text == "streetlight")
            .unwrap();
        assert_eq!(light.child("metadata").text, "true");
        assert_eq!(light.child("service_name").text, "路灯故障");
    }

    pub async fn service_definitions_carry_attributes(app: &App) {
        let d = app.json("services/streetlight.json").await;
        assert!(d.is_object(), "a definition is an object: {d}");
        assert_eq!(d["service_code"], "streetlight");
        let attrs = d["attributes"].as_array().unwrap();
        let codes: Vec<&str> = attrs.iter().filter_map(|a| a["code"].as_str()).collect();
        assert_eq!(codes, vec!["lamp", "hazards", "safety"], "in order");
        assert_eq!(attrs[0]["datatype"], "singlevaluelist");
        assert_eq!(attrs[0]["required"], true);
        assert_eq!(attrs[0]["variable"], true);
        assert_eq!(
            attrs[0]["values"][1],
            json!({"key": "sodium", "name": "钠灯"})
        );
        assert_eq!(attrs[2]["variable"], false);

        let x = app.xml("services/streetlight.xml").await;
        assert_eq!(x.name, "service_definition");
        assert_eq!(x.child("service_code").text, "streetlight");
        assert_eq!(x.all("attribute").len(), 3);
        let keys: Vec<&str> = x.child("attributes").children[1]
            .all("key")
            .iter()
            .map(|k| k.text.as_str())
            .collect();
        assert_eq!(keys, vec!["dark", "sparks", "fallen"]);

        expect_fail(app.get("services/garbage.json").await, 404).await;
        expect_fail(app.get("services/retired.json").await, 404).await;
        expect_fail(app.get("services/nope.json").await, 404).await;
        expect_xml_fail(app.get("services/nope.xml").await, 404).await;
    }

    pub async fn a_request_is_filed_and_readable(app: &App) {
        let r = app
            .post(
                "requests.json",
                &[
                    ("api_key", app.key.as_str()),
                    ("jurisdiction_id", "baotou.example"),
                    ("service_code", "streetlight"),
                    ("lat", KY_POINT.0),
                    ("long", KY_POINT.1),
                    ("address_string", "开元路 12 号门口"),
                    ("description", "路灯不亮,晚上很黑"),
                    LAMP,
                    ("first_name", "三"),
                    ("last_name", "张"),
                    ("phone", "13900001234"),
                    ("email", "zhang@example.org"),
                    ("device_id", "device-abc-123"),
                    ("account_id", "acct-777"),
                    ("media_url", "https://img.example.org/light.jpg"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_content_type(&r, "application/json; charset=utf-8");
        let body: Value = r.json().await.unwrap();
        let list = body.as_array().expect("a bare array");
        assert_eq!(list.len(), 1);
        let id = list[0]["service_request_id"]
            .as_str()
            .expect("id as a string");
        assert!(id.parse::<i64>().is_ok());
        let token = list[0]["token"].as_str().unwrap();
        assert!(!token.is_empty());
        assert!(list[0]["service_notice"]
            .as_str()
            .is_some_and(|n| n.contains("白音席勒街道党工委")));
        assert_eq!(list[0]["account_id"], Value::Null);

        let r = app.get(&format!("requests/{id}.json")).await;
        let text = r.text().await.unwrap();
        for private in [
            "张",
            "13900001234",
            "139****",
            "zhang@",
            "device-abc",
            "acct-777",
        ] {
            assert!(!text.contains(private), "{private:?} leaked: {text}");
        }
        let one: Value = serde_json::from_str(&text).unwrap();
        let req = &one[0];
        assert_eq!(req["service_request_id"], id);
        assert_eq!(req["status"], "open");
        assert_eq!(req["service_code"], "streetlight");
        assert_eq!(req["service_name"], "路灯故障");
        assert_eq!(req["description"], "路灯不亮,晚上很黑");
        assert_eq!(req["agency_responsible"], "白音席勒街道党工委");
        assert_eq!(req["address"], "开元路 12 号门口");
        assert_eq!(req["address_id"], KY, "placed at the nearest community");
        assert_eq!(req["lat"], json!(40.6001));
        assert_eq!(req["long"], json!(109.8001));
        assert_eq!(req["media_url"], "https://img.example.org/light.jpg");
        assert!(req["status_notes"].as_str().unwrap().contains("已受理"));
        for field in [
            "requested_datetime",
            "updated_datetime",
            "expected_datetime",
        ] {
            assert!(
                req[field].as_str().is_some_and(|t| t.ends_with("+08:00")),
                "{field} carries a zone: {req}"
            );
        }

        // Stored as a help demand from Open311, with the name joined Chinese-style,
        // and none of the identifiers the spec lets clients send.
        let d = app.store.demand(id.parse().unwrap()).await.unwrap();
        assert_eq!(d.kind.as_str(), "help");
        assert_eq!(d.channel.as_str(), "open311");
        assert_eq!(d.reporter_name.as_deref(), Some("张三"));
        assert_eq!(d.reporter_account_id, None);
        let attrs = d.attributes.unwrap().to_string();
        assert!(
            !attrs.contains("zhang@") && !attrs.contains("device-abc"),
            "{attrs}"
        );

        // The same in XML.
        let r = app
            .post(
                "requests.xml",
                &[
                    ("api_key", app.key.as_str()),
                    ("service_code", "garbage"),
                    ("address_id", HX),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_content_type(&r, "text/xml; charset=utf-8");
        let x = parse_xml(&r.text().await.unwrap());
        assert_eq!(x.name, "service_requests");
        let req = x.child("request");
        let xid = &req.child("service_request_id").text;
        assert!(xid.parse::<i64>().is_ok() && xid != id);
        assert!(!req.child("token").text.is_empty());
        assert_eq!(req.child("account_id").text, "");
        let back = app.json(&format!("requests/{xid}.json")).await;
        assert_eq!(back[0]["address_id"], HX);
        assert_eq!(
            back[0]["description"], "垃圾清运",
            "the service names a bare request"
        );
    }

    pub async fn api_key_is_checked(app: &App) {
        fn form(key: Option<&str>) -> Vec<(&'static str, &str)> {
            let mut f = vec![("service_code", "garbage"), ("address_id", KY)];
            if let Some(k) = key {
                f.push(("api_key", k));
            }
            f
        }
        let d = expect_fail(app.post("requests.json", &form(None)).await, 403).await;
        assert!(d.contains("api_key"), "{d}");
        expect_xml_fail(app.post("requests.xml", &form(None)).await, 403).await;
        expect_fail(
            app.post("requests.json", &form(Some("lxt_nope"))).await,
            403,
        )
        .await;
        expect_fail(app.post("requests.json", &form(Some(""))).await, 403).await;

        let actor = Actor::system("test");
        let issue = |scopes: &[&str]| {
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            let store = &app.store;
            let actor = actor.clone();
            async move {
                let account = store
                    .account_by_username("app311")
                    .await
                    .unwrap()
                    .unwrap()
                    .0;
                lianxin_server::api::issue_token(store, &actor, "t", account.id, &scopes, None)
                    .await
                    .unwrap()
            }
        };
        let (read_only, _) = issue(&["registry:read", "demands:read"]).await;
        let d = expect_fail(
            app.post("requests.json", &form(Some(&read_only))).await,
            403,
        )
        .await;
        assert!(d.contains("scope"), "{d}");
        let (writer, _) = issue(&["demands:write"]).await;
        assert_eq!(
            app.post("requests.json", &form(Some(&writer)))
                .await
                .status(),
            200
        );
        let (revoked, t) = issue(&["open311"]).await;
        app.store.revoke_api_token(&actor, t.id).await.unwrap();
        expect_fail(app.post("requests.json", &form(Some(&revoked))).await, 403).await;

        // In the query string instead of the body.
        let r = reqwest::Client::new()
            .post(app.url(&format!(
                "requests.json?api_key={}&jurisdiction_id=x",
                app.key
            )))
            .form(&form(None))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // A disabled account's tokens stop working.
        let account = app
            .store
            .account_by_username("app311")
            .await
            .unwrap()
            .unwrap()
            .0;
        app.store
            .set_disabled(&actor, account.id, true)
            .await
            .unwrap();
        expect_fail(app.post("requests.json", &form(Some(&app.key))).await, 403).await;
        assert_eq!(
            app.demand_count().await,
            2,
            "only the accepted requests exist"
        );
    }

    pub async fn submissions_are_validated(app: &App) {
        let key = app.key.as_str();
        let bad = |form: Vec<(&'static str, String)>| {
            let mut f: Vec<(&str, String)> = vec![("api_key", key.to_string())];
            f.extend(form);
            async move {
                let r = reqwest::Client::new()
                    .post(app.url("requests.json"))
                    .form(&f)
                    .send()
                    .await
                    .unwrap();
                expect_fail(r, 400).await
            }
        };
        let s = |v: &str| v.to_string();
        let d = bad(vec![("address_id", s(KY))]).await;
        assert!(d.contains("service_code"), "{d}");
        let d = bad(vec![("service_code", s("nope")), ("address_id", s(KY))]).await;
        assert!(d.contains("nope"), "{d}");
        bad(vec![("service_code", s("retired")), ("address_id", s(KY))]).await;
        let d = bad(vec![("service_code", s("garbage"))]).await;
        assert!(d.contains("location"), "{d}");
        let d = bad(vec![
            ("service_code", s("garbage")),
            ("address_string", s("开元路 1 号")),
        ])
        .await;
        assert!(d.contains("address_string"), "{d}");
        let d = bad(vec![("service_code", s("garbage")), ("lat", s(KY_POINT.0))]).await;
        assert!(d.contains("long"), "{d}");
        bad(vec![
            ("service_code", s("garbage")),
            ("lat", s("north")),
            ("long", s("1")),
        ])
        .await;
        bad(vec![
            ("service_code", s("garbage")),
            ("lat", s("NaN")),
            ("long", s("1")),
        ])
        .await;
        bad(vec![
            ("service_code", s("garbage")),
            ("lat", s("91")),
            ("long", s("1")),
        ])
        .await;
        let d = bad(vec![
            ("service_code", s("garbage")),
            ("address_id", s("999999")),
        ])
        .await;
        assert!(d.contains("address_id"), "{d}");
        let d = bad(vec![
            ("service_code", s("garbage")),
            ("address_id", s(KY)),
            ("description", "长".repeat(4001)),
        ])
        .await;
        assert!(d.contains("4000"), "{d}");
        let d = bad(vec![
            ("service_code", s("garbage")),
            ("address_id", s(KY)),
            ("phone", s("12345")),
        ])
        .await;
        assert!(d.contains("phone"), "{d}");
        bad(vec![
            ("service_code", s("garbage")),
            ("address_id", s(KY)),
            ("media_url", s("javascript:alert(1)")),
        ])
        .await;
        assert_eq!(app.demand_count().await, 0, "nothing refused was stored");

        // Not form-encoded.
        let r = reqwest::Client::new()
            .post(app.url("requests.json"))
            .header("content-type", "application/json")
            .body(json!({"api_key": key, "service_code": "garbage", "address_id": KY}).to_string())
            .send()
            .await
            .unwrap();
        expect_fail(r, 400).await;

        // The limits themselves are accepted; empty optional fields are absent;
        // jurisdiction_id is ignored; an address_string with a place is kept.
        let long = "长".repeat(4000);
        let (id, _) = app
            .file(&[
                ("service_code", "garbage"),
                ("address_id", KY),
                ("address_string", "开元路 3 号"),
                ("description", &long),
                ("jurisdiction_id", "anything.at.all"),
                ("lat", ""),
                ("long", ""),
                ("email", ""),
                ("media_url", ""),
            ])
            .await;
        let back = app.json(&format!("requests/{id}.json")).await;
        assert_eq!(back[0]["address"], "开元路 3 号");
        assert_eq!(back[0]["lat"], Value::Null);
        assert_eq!(
            back[0]["description"].as_str().unwrap().chars().count(),
            4000
        );
        assert_eq!(app.demand_count().await, 1);
    }

    pub async fn attributes_are_checked_against_the_definition(app: &App) {
        let place = ("address_id", KY);
        let base = [
            ("api_key", app.key.as_str()),
            ("service_code", "streetlight"),
            place,
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut f = base.to_vec();
            f.extend_from_slice(extra);
            f
        };
        let d = expect_fail(app.post("requests.json", &with(&[])).await, 400).await;
        assert!(d.contains("attribute[lamp]"), "{d}");
        let d = expect_fail(
            app.post("requests.json", &with(&[("attribute[lamp]", "candle")]))
                .await,
            400,
        )
        .await;
        assert!(d.contains("candle"), "{d}");
        expect_fail(
            app.post(
                "requests.json",
                &with(&[
                    LAMP,
                    ("attribute[hazards][]", "dark"),
                    ("attribute[hazards][]", "ghosts"),
                ]),
            )
            .await,
            400,
        )
        .await;
        expect_fail(
            app.post(
                "requests.json",
                &with(&[LAMP, ("attribute[lamp]", "sodium")]),
            )
            .await,
            400,
        )
        .await;

        // multivaluelist, brackets percent-encoded (as reqwest sends them) …
        let r = app
            .post(
                "requests.json",
                &with(&[
                    LAMP,
                    ("attribute[hazards][]", "dark"),
                    ("attribute[hazards][]", "sparks"),
                ]),
            )
            .await;
        assert_eq!(r.status(), 200);
        let id: i64 = r.json::<Value>().await.unwrap()[0]["service_request_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let d = app.store.demand(id).await.unwrap();
        assert_eq!(
            d.attributes.unwrap(),
            json!({"lamp": "led", "hazards": ["dark", "sparks"]}),
            "answers to informational or unknown attributes are not kept"
        );

        // … and raw, as PHP-style clients write them.
        let body = format!(
            "api_key={}&service_code=streetlight&address_id={KY}&attribute[lamp]=sodium\
             &attribute[hazards][]=fallen&attribute[safety]=x&attribute[made_up]=y",
            app.key
        );
        let r = reqwest::Client::new()
            .post(app.url("requests.json"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id: i64 = r.json::<Value>().await.unwrap()[0]["service_request_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let d = app.store.demand(id).await.unwrap();
        assert_eq!(
            d.attributes.unwrap(),
            json!({"lamp": "sodium", "hazards": ["fallen"]})
        );
    }

    pub async fn listing_filters(app: &App) {
        let (a, _) = app
            .file(&[("service_code", "streetlight"), ("address_id", KY), LAMP])
            .await;
        let (b, _) = app
            .file(&[("service_code", "garbage"), ("address_id", KY)])
            .await;
        let (c, _) = app
            .file(&[("service_code", "garbage"), ("address_id", HX)])
            .await;
        app.act(
            &c,
            Action::Reject {
                reason: "重复反映".into(),
            },
        )
        .await;
        // A whistle-blowing report filed through another channel.
        let report = app
            .state
            .desk
            .submit(
                Intake {
                    kind: "report".into(),
                    category: "garbage".into(),
                    channel: "web".into(),
                    description: "举报有人偷倒建筑垃圾".into(),
                    place_code: Some(KY.into()),
                    ..Default::default()
                },
                &Submitter {
                    actor: "public".into(),
                    name: "匿名".into(),
                    account_id: None,
                },
            )
            .await
            .unwrap()
            .id
            .to_string();

        // A help request told to an official on a visit: not for publication.
        let visit = app
            .state
            .desk
            .submit(
                Intake {
                    kind: "help".into(),
                    category: "garbage".into(),
                    channel: "visit".into(),
                    description: "我家门口的垃圾桶坏了".into(),
                    place_code: Some(KY.into()),
                    ..Default::default()
                },
                &Submitter {
                    actor: "public".into(),
                    name: "居民".into(),
                    account_id: None,
                },
            )
            .await
            .unwrap()
            .id
            .to_string();
        assert_eq!(
            app.ids("").await,
            set(&[&a, &b, &c]),
            "reports and demands from private channels stay out"
        );
        assert_eq!(
            app.ids(&format!("service_request_id={visit}")).await,
            set(&[])
        );
        expect_fail(app.get(&format!("requests/{visit}.json")).await, 404).await;
        assert_eq!(
            app.ids("service_code=&status=&jurisdiction_id=").await,
            set(&[&a, &b, &c])
        );
        assert_eq!(
            app.ids("jurisdiction_id=somewhere").await,
            set(&[&a, &b, &c])
        );
        assert_eq!(app.ids("service_code=garbage").await, set(&[&b, &c]));
        assert_eq!(
            app.ids("service_code=garbage,streetlight").await,
            set(&[&a, &b, &c])
        );
        assert_eq!(app.ids("service_code=nope").await, set(&[]));
        assert_eq!(app.ids("status=closed").await, set(&[&c]));
        assert_eq!(app.ids("status=open").await, set(&[&a, &b]));
        assert_eq!(app.ids("status=open,closed").await, set(&[&a, &b, &c]));
        assert_eq!(
            app.ids("status=open&service_code=garbage").await,
            set(&[&b])
        );
        assert_eq!(
            app.ids(&format!("service_request_id={a},{c}&service_code=nope&status=open&start_date=2001-01-01T00:00:00Z"))
                .await,
            set(&[&a, &c]),
            "service_request_id overrides the other filters"
        );
        assert_eq!(
            app.ids(&format!("service_request_id={report}")).await,
            set(&[])
        );
        let closed = app
            .json(&format!("requests.json?service_request_id={c}"))
            .await;
        assert_eq!(closed[0]["status"], "closed");
        assert!(closed[0]["status_notes"]
            .as_str()
            .unwrap()
            .contains("Rejected"));

        let now = Utc::now();
        let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        assert_eq!(
            app.ids(&format!(
                "start_date={}&end_date={}",
                at(now - Duration::days(1)),
                at(now + Duration::days(1))
            ))
            .await,
            set(&[&a, &b, &c])
        );
        assert_eq!(
            app.ids("start_date=2001-01-01T00:00:00Z&end_date=2001-02-01T00:00:00%2B08:00")
                .await,
            set(&[])
        );
        // An offset whose `+` was not percent-encoded arrives as a space.
        let local = (now - Duration::days(1))
            .with_timezone(&lianxin_domain::calendar::SHANGHAI)
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        assert_eq!(
            app.ids(&format!("start_date={local}")).await,
            set(&[&a, &b, &c])
        );

        for bad in [
            "start_date=2001-01-01T00:00:00Z&end_date=2001-06-01T00:00:00Z",
            "start_date=2001-02-01T00:00:00Z&end_date=2001-01-01T00:00:00Z",
            "start_date=2001-01-01",
            "end_date=yesterday",
            "start_date=262143-01-01T00:00:00%2B0000",
            "status=pending",
            "service_request_id=1,two",
        ] {
            expect_fail(app.get(&format!("requests.json?{bad}")).await, 400).await;
        }
        expect_xml_fail(app.get("requests.xml?status=pending").await, 400).await;

        let x = app.xml("requests.xml?service_code=garbage").await;
        assert_eq!(x.name, "service_requests");
        let xids: BTreeSet<String> = x
            .all("request")
            .iter()
            .map(|r| r.child("service_request_id").text.clone())
            .collect();
        assert_eq!(xids, set(&[&b, &c]));
    }

    pub async fn one_request_and_tokens(app: &App) {
        let (id, token) = app
            .file(&[("service_code", "garbage"), ("address_id", KY)])
            .await;
        let one = app.json(&format!("requests/{id}.json")).await;
        assert_eq!(one.as_array().map(Vec::len), Some(1), "a one-element array");
        assert_eq!(one[0]["service_request_id"], id);
        let x = app.xml(&format!("requests/{id}.xml")).await;
        assert_eq!(x.name, "service_requests");
        assert_eq!(x.all("request").len(), 1);
        assert_eq!(x.child("request").child("service_request_id").text, id);

        expect_fail(app.get("requests/999999.json").await, 404).await;
        expect_fail(app.get("requests/abc.json").await, 404).await;
        expect_xml_fail(app.get("requests/999999.xml").await, 404).await;

        let t = app.json(&format!("tokens/{token}.json")).await;
        assert_eq!(t, json!([{"service_request_id": id, "token": token}]));
        let x = app.xml(&format!("tokens/{token}.xml")).await;
        assert_eq!(x.child("request").child("service_request_id").text, id);
        expect_fail(app.get("tokens/notarealtoken.json").await, 404).await;
        expect_fail(app.get("tokens/%2E%2E.json").await, 404).await;

        let report = app
            .state
            .desk
            .submit(
                Intake {
                    kind: "report".into(),
                    category: "garbage".into(),
                    channel: "hotline".into(),
                    description: "举报".into(),
                    place_code: Some(KY.into()),
                    ..Default::default()
                },
                &Submitter {
                    actor: "public".into(),
                    name: "匿名".into(),
                    account_id: None,
                },
            )
            .await
            .unwrap();
        expect_fail(app.get(&format!("requests/{}.json", report.id)).await, 404).await;
    }

    pub async fn status_notes_follow_the_loop(app: &App) {
        let (id, _) = app
            .file(&[("service_code", "garbage"), ("address_id", HX)])
            .await;
        let notes = |v: &Value| v[0]["status_notes"].as_str().unwrap().to_string();
        app.act(
            &id,
            Action::Assess {
                urgency: None,
                category: None,
                deadline: None,
                note: None,
            },
        )
        .await;
        app.act(
            &id,
            Action::Assign {
                unit: app.hx,
                deadline: None,
                note: None,
            },
        )
        .await;
        let v = app.json(&format!("requests/{id}.json")).await;
        let n = notes(&v);
        assert!(
            n.contains("已派单") && n.contains("Assigned") && n.contains("和谐社区党委"),
            "{n}"
        );
        assert_eq!(v[0]["status"], "open");
        assert_eq!(v[0]["agency_responsible"], "白音席勒街道党工委");
        assert!(v[0]["expected_datetime"].is_string());

        app.act(&id, Action::Start { note: None }).await;
        app.act(
            &id,
            Action::Answer {
                text: "已清运完毕".into(),
            },
        )
        .await;
        let v = app.json(&format!("requests/{id}.json")).await;
        let n = notes(&v);
        assert!(
            n.contains("已答复") && n.contains("Answered") && n.contains("已清运完毕"),
            "{n}"
        );
        assert_eq!(v[0]["status"], "open", "the reporter may still reopen it");
        assert_eq!(v[0]["expected_datetime"], Value::Null);
        assert!(app.street != app.hx);
    }

    pub async fn user_text_cannot_break_the_documents(app: &App) {
        let evil = "灯</description><evil>1</evil>\"},{\"x\":1} & 'q' <![CDATA[x]]> &amp; \t end";
        let (id, _) = app
            .file(&[
                ("service_code", "garbage"),
                ("address_id", KY),
                ("description", evil),
                ("address_string", "<address_id>0</address_id>"),
            ])
            .await;

        let v = app.json(&format!("requests/{id}.json")).await;
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        assert_eq!(v[0]["description"], evil);
        assert_eq!(v[0]["address_id"], KY);
        assert!(v[0].get("x").is_none());

        for path in [format!("requests/{id}.xml"), "requests.xml".to_string()] {
            let x = app.xml(&path).await;
            assert!(x.all("evil").is_empty(), "no injected element in {path}");
            assert_eq!(x.all("request").len(), 1);
            let req = x.child("request");
            assert_eq!(req.child("description").text, evil);
            assert_eq!(req.child("address").text, "<address_id>0</address_id>");
            assert_eq!(req.child("address_id").text, KY);
            assert_eq!(req.all("address_id").len(), 1);
        }

        // Errors echo what the client sent; that must be inert too.
        let r = app
            .post(
                "requests.xml",
                &[
                    ("api_key", app.key.as_str()),
                    ("service_code", "</description><evil/>"),
                    ("address_id", KY),
                ],
            )
            .await;
        let doc = expect_xml_fail(r, 400).await;
        assert!(doc.all("evil").is_empty());
        assert!(doc
            .child("error")
            .child("description")
            .text
            .contains("<evil/>"));
    }

    /// Clients place requests by place code or by point, in any order; the store
    /// must take a point after a request without one (and the other way round).
    pub async fn location_forms_can_alternate(app: &App) {
        let by_place = [("service_code", "garbage"), ("address_id", HX)];
        let by_point = [
            ("service_code", "garbage"),
            ("lat", KY_POINT.0),
            ("long", KY_POINT.1),
        ];
        let mut filed = Vec::new();
        for form in [&by_place[..], &by_point, &by_place, &by_point] {
            filed.push(app.file(form).await.0);
        }
        let places: Vec<Value> = {
            let mut out = Vec::new();
            for id in &filed {
                out.push(app.json(&format!("requests/{id}.json")).await[0]["address_id"].clone());
            }
            out
        };
        assert_eq!(places, vec![json!(HX), json!(KY), json!(HX), json!(KY)]);
    }

    pub async fn unknown_paths_and_formats_are_404(app: &App) {
        for path in [
            "services.html",
            "services",
            "discovery.JSON",
            "requests.csv",
            "services/streetlight.yaml",
            "requests/1",
            "tokens/abc.txt",
            "nothing/here.json",
        ] {
            expect_fail(app.get(path).await, 404).await;
        }
        expect_xml_fail(app.get("nothing/here.xml").await, 404).await;
        expect_fail(
            app.post("requests.html", &[("api_key", app.key.as_str())])
                .await,
            404,
        )
        .await;
        expect_fail(app.post("services.json", &[]).await, 405).await;
    }

    pub async fn retries_with_an_idempotency_key_file_once(app: &App) {
        let form = [
            ("api_key", app.key.as_str()),
            ("service_code", "garbage"),
            ("lat", KY_POINT.0),
            ("long", KY_POINT.1),
            ("description", "垃圾桶满了"),
        ];
        let send = |form: Vec<(&'static str, String)>| {
            reqwest::Client::new()
                .post(app.url("requests.json"))
                .header("idempotency-key", "retry-1")
                .form(&form)
                .send()
        };
        let owned: Vec<(&'static str, String)> =
            form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let before = app.demand_count().await;
        let first = send(owned.clone()).await.unwrap();
        assert_eq!(first.status(), 200);
        let first: Value = first.json().await.unwrap();
        let again = send(owned.clone()).await.unwrap();
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again, first);
        assert_eq!(app.demand_count().await, before + 1, "filed once");
        // Another client (another api_key) may use the same key for its own request.
        let mut other = owned.clone();
        other[0].1 = "lxt_not_a_real_key".into();
        let r = send(other).await.unwrap();
        assert_eq!(r.status(), 403, "its own answer, not a conflict");
    }
}
