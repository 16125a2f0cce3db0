//! Test harness: the whole application on a real socket, on a fresh store of each
//! engine, with a small registry and one account per role. Tests talk to it over
//! HTTP exactly as clients do.

#![allow(dead_code)]

use lianxin_domain::draft::*;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::{DataScope, Role};
use lianxin_server::{router, AppState, Settings};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use lianxin_store::testing::TestStore;
use lianxin_store::Engine;
use std::sync::OnceLock;

pub const PASSWORD: &str = "test-password-1";

pub struct App {
    pub base: String,
    pub store: TestStore,
    pub key: PiiKey,
    /// The demand desk of the running server (its clock can be moved forward).
    pub desk: std::sync::Arc<lianxin_server::desk::DemandDesk>,
}

pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| lianxin_server::auth::hash_password(PASSWORD).unwrap())
}

pub async fn spawn_app(engine: Engine) -> App {
    let settings = Settings {
        max_body_bytes: 64 * 1024,
        ..Settings::default()
    };
    spawn_app_with(engine, settings).await
}

pub async fn spawn_app_with(engine: Engine, settings: Settings) -> App {
    let store = TestStore::new(engine).await.unwrap();
    let key = PiiKey::from_master(&[9; 32]);
    seed(&store, &key).await;
    seed_loop(&store).await;
    let state = AppState::new(store.store.clone(), key.clone(), settings)
        .await
        .unwrap();
    let desk = state.desk.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    App {
        base: format!("http://{addr}"),
        store,
        key,
        desk,
    }
}

async fn seed(store: &TestStore, key: &PiiKey) {
    let actor = Actor::system("test");
    let all = DataScope::everything();
    for (code, name, level, parent) in [
        ("150000", "内蒙古自治区", "region", None),
        ("150200", "包头市", "city", Some("150000")),
        ("150207", "九原区", "county", Some("150200")),
        ("150207.BYXL", "白音席勒街道", "town", Some("150207")),
        ("150207.BYXL.KY", "开元社区", "village", Some("150207.BYXL")),
        ("150207.BYXL.HX", "和谐社区", "village", Some("150207.BYXL")),
    ] {
        let d = PlaceDraft::parse(&RawPlace {
            code: code.into(),
            name: name.into(),
            level: level.into(),
            parent_code: parent.map(Into::into),
            ..Default::default()
        })
        .unwrap();
        store.create_place(&actor, &all, &d).await.unwrap();
    }
    for (code, serves) in [
        ("KY-DW", "150207.BYXL.KY"),
        ("HX-DW", "150207.BYXL.HX"),
        ("BYXL-DGW", "150207.BYXL"),
        ("JY-QW", "150207"),
        ("KY-WY", "150207.BYXL.KY"),
    ] {
        let d = OrgDraft::parse(&RawOrg {
            code: code.into(),
            name: format!("{code} 党委"),
            kind: "party_committee".into(),
            parent_code: None,
            serves: vec![serves.into()],
        })
        .unwrap();
        store.create_org(&actor, &all, &d).await.unwrap();
    }
    for (name, phone, place) in [
        ("开元居民", "13800001111", "150207.BYXL.KY"),
        ("和谐居民", "13800002222", "150207.BYXL.HX"),
    ] {
        let d = PersonDraft::parse(
            &RawPerson {
                name: name.into(),
                phone: Some(phone.into()),
                place_code: place.into(),
                ..Default::default()
            },
            key,
        )
        .unwrap();
        store.create_person(&actor, &all, &d).await.unwrap();
    }
    for (username, role, place, org) in [
        ("admin", Role::Admin, None, None),
        (
            "ky.worker",
            Role::CommunityWorker,
            Some("150207.BYXL.KY"),
            None,
        ),
        (
            "hx.worker",
            Role::CommunityWorker,
            Some("150207.BYXL.HX"),
            None,
        ),
        ("official", Role::Official, Some("150207"), None),
        ("rider", Role::Rider, None, None),
        ("resident", Role::Resident, Some("150207.BYXL.KY"), None),
        ("resident2", Role::Resident, Some("150207.BYXL.KY"), None),
        // 开元社区's property company, and the tablet at its rider gate.
        ("ky.wy", Role::UnitStaff, None, Some("KY-WY")),
        ("gate.ky", Role::GateDevice, Some("150207.BYXL.KY"), None),
    ] {
        store
            .create_account(
                &actor,
                &NewAccount {
                    username: username.into(),
                    display_name: username.into(),
                    password_hash: password_hash().to_string(),
                    role,
                    scope_place_code: place.map(Into::into),
                    scope_org_code: org.map(Into::into),
                    person_id: None,
                },
            )
            .await
            .unwrap();
    }
}

/// The demand loop's rules: three categories, and routing community → street →
/// district, with property repairs at 开元社区 going to its property company.
async fn seed_loop(store: &TestStore) {
    use lianxin_store::demands::Category;
    let actor = Actor::system("test");
    for (code, name, urgency) in [
        ("utilities", "水电气暖", "ordinary"),
        ("property_repair", "物业报修", "ordinary"),
        ("public_safety", "安全隐患", "emergency"),
        ("other", "其他", "ordinary"),
    ] {
        store
            .upsert_category(
                &actor,
                &Category {
                    code: code.into(),
                    name_zh: name.into(),
                    name_en: code.into(),
                    description: String::new(),
                    default_urgency: lianxin_domain::demand::Urgency::parse(urgency).unwrap(),
                    attributes: serde_json::json!([]),
                    keywords: String::new(),
                    sort: 0,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    for (category, place, unit) in [
        (None, "150207", "JY-QW"),
        (None, "150207.BYXL", "BYXL-DGW"),
        (None, "150207.BYXL.KY", "KY-DW"),
        (Some("property_repair"), "150207.BYXL.KY", "KY-WY"),
        (None, "150207.BYXL.HX", "HX-DW"),
    ] {
        let place = store.place_by_code(place).await.unwrap().unwrap();
        let unit = store.org_by_code(unit).await.unwrap().unwrap();
        store
            .create_routing_rule(&actor, category, place.id, unit.id)
            .await
            .unwrap();
    }
}

/// A browser-like client: cookies kept, redirects not followed.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in through the login form; returns the client and the session's CSRF token.
pub async fn login(app: &App, username: &str) -> (reqwest::Client, String) {
    let c = client();
    let page = c
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_csrf(&page);
    let r = c
        .post(format!("{}/login", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login as {username}");
    let me: serde_json::Value = c
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = me["csrf_token"].as_str().unwrap().to_string();
    (c, token)
}

/// Logs in as admin through the form on a fresh client, sending `proto` as
/// `X-Forwarded-Proto` when given; returns the session's `Set-Cookie` header.
pub async fn admin_session_cookie(app: &App, proto: Option<&str>) -> String {
    let c = client();
    let page = c
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut post = c.post(format!("{}/login", app.base));
    if let Some(p) = proto {
        post = post.header("x-forwarded-proto", p);
    }
    let r = post
        .form(&[
            ("csrf", form_csrf(&page).as_str()),
            ("username", "admin"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("lx_session="))
        .expect("a session cookie")
}

pub fn form_csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

/// Asserts the response is a JSON API error with this status and code.
pub async fn expect_error(r: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(r.status().as_u16(), status, "status for {code}");
    let body: serde_json::Value = r.json().await.expect("an error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    body
}

pub fn engines() -> Vec<Engine> {
    lianxin_store::testing::engines()
}
