//! The rider gate pass over HTTP: the whole online flow (platform, rider, device,
//! order, ticket, QR built as the phone would, scans at the gate), the signed lists
//! for offline boxes, and bad input for every endpoint. Each runs on every engine
//! available.

mod common;

use base64::Engine as _;
use common::*;
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use lianxin_domain::person::IdCardNumber;
use lianxin_pass::Pass;
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
    the_online_flow_passes_once_and_in_turn,
    offline_lists_are_signed_by_the_issuer,
    bad_input_is_a_clear_4xx,
    a_rotation_reaches_the_online_scan_at_once,
    the_phone_binds_itself_and_the_gate_page_scans,
    the_gate_log_is_for_the_compound_and_its_property_company,
);

fn api(app: &App, path: &str) -> String {
    format!("{}/api/v1{path}", app.base)
}

fn id_card(n: u32) -> String {
    let first17 = format!("15020719900101{n:03}");
    format!("{first17}{}", IdCardNumber::check_char(&first17).unwrap())
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An admin session.
struct Admin {
    c: reqwest::Client,
    csrf: String,
}

impl Admin {
    async fn post(&self, app: &App, path: &str, body: Value) -> reqwest::Response {
        self.c
            .post(api(app, path))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn created(&self, app: &App, path: &str, body: Value) -> Value {
        let r = self.post(app, path, body).await;
        assert_eq!(r.status(), 201, "POST {path}");
        r.json().await.unwrap()
    }
}

async fn bearer_get(app: &App, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(api(app, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn bearer_send(
    app: &App,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, api(app, path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Platform, rider with an account and a device, two gates (开元 and 和谐).
struct World {
    admin: Admin,
    platform: String,
    rider: i64,
    device: SigningKey,
    gate: String,
    other_gate: String,
}

async fn world(app: &App) -> World {
    let (c, csrf) = login(app, "admin").await;
    let admin = Admin { c, csrf };
    let p = admin
        .created(
            app,
            "/gate/platforms",
            json!({ "code": "meituan", "name": "美团" }),
        )
        .await;
    let rider = admin
        .created(
            app,
            "/gate/riders",
            json!({
                "platform": "meituan", "name": "王小明", "id_card": id_card(1), "region": "150207",
                "username": "rider.wang", "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(rider["rider"]["name_masked"], "王**");
    let rider_id = rider["rider"]["id"].as_i64().unwrap();
    let device = SigningKey::from_bytes(&[7; 32]);
    admin
        .created(
            app,
            &format!("/gate/riders/{rider_id}/devices"),
            json!({ "public_key": hex::encode(device.verifying_key().to_bytes()) }),
        )
        .await;
    let gate = admin
        .created(
            app,
            "/gate/gates",
            json!({ "compound": "150207.BYXL.KY", "name": "北门" }),
        )
        .await;
    let other = admin
        .created(
            app,
            "/gate/gates",
            json!({ "compound": "150207.BYXL.HX", "name": "南门" }),
        )
        .await;
    World {
        admin,
        platform: p["token"].as_str().unwrap().into(),
        rider: rider_id,
        device,
        gate: gate["token"].as_str().unwrap().into(),
        other_gate: other["token"].as_str().unwrap().into(),
    }
}

fn order_body(app: &App, rider: i64) -> Value {
    let now = app.desk.now().timestamp();
    json!({
        "rider_id": rider, "compound": "150207.BYXL.KY",
        "window_from": rfc3339(now - 600), "window_until": rfc3339(now + 3 * 3600),
    })
}

async fn scan(app: &App, gate: &str, qr: &str, direction: &str) -> Value {
    let r = bearer_send(
        app,
        gate,
        reqwest::Method::POST,
        "/gate/scan",
        json!({ "qr": qr, "direction": direction }),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn put_order(app: &App, token: &str, id: &str, body: Value) -> reqwest::Response {
    bearer_send(
        app,
        token,
        reqwest::Method::PUT,
        &format!("/gate/orders/{id}"),
        body,
    )
    .await
}

fn reason(v: &Value) -> &str {
    assert_eq!(v["outcome"], "deny", "{v}");
    v["reason"].as_str().unwrap()
}

mod cases {
    use super::*;

    pub async fn the_online_flow_passes_once_and_in_turn(app: &App) {
        let w = world(app).await;
        // The platform declares the order; again is the same order; changed is 409.
        let body = order_body(app, w.rider);
        let put = |b: Value| {
            bearer_send(
                app,
                &w.platform,
                reqwest::Method::PUT,
                "/gate/orders/MT-1",
                b,
            )
        };
        let first = put(body.clone()).await;
        assert_eq!(first.status(), 201);
        let first: Value = first.json().await.unwrap();
        let again = put(body.clone()).await;
        assert_eq!(again.status(), 200);
        let again: Value = again.json().await.unwrap();
        assert_eq!(first, again);
        let mut changed = body.clone();
        changed["compound"] = json!("150207.BYXL.HX");
        expect_error(put(changed).await, 409, "conflict").await;

        // The rider fetches the ticket; the phone builds the QR.
        let (rider, rider_csrf) = login(app, "rider.wang").await;
        let t: Value = rider
            .get(api(app, "/gate/my-ticket"))
            .header("x-csrf-token", &rider_csrf)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(t["compound"], "150207.BYXL.KY");
        assert_eq!(t["step_seconds"], 30);
        let ticket = base64::engine::general_purpose::STANDARD
            .decode(t["ticket"].as_str().unwrap())
            .unwrap();
        let compound = t["compound_id"].as_u64().unwrap();
        let qr = |step: u64| Pass::prove(&ticket, compound, step, &w.device).encode();
        let s = u64::try_from(app.desk.now().timestamp()).unwrap() / 30;
        assert!(!qr(s).contains("王") && !qr(s).contains(&id_card(1)));

        // Another compound's gate refuses it.
        assert_eq!(
            reason(&scan(app, &w.other_gate, &qr(s - 1), "entry").await),
            "wrong_compound"
        );
        // Entry passes, once; the same code again is a replay.
        let pass = scan(app, &w.gate, &qr(s), "entry").await;
        assert_eq!(pass["outcome"], "pass", "{pass}");
        assert_eq!(pass["direction"], "entry");
        assert!(!pass.to_string().contains("王"));
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(s), "entry").await),
            "replayed"
        );
        // Exit passes; exit again (a later step) is refused: not inside.
        let out = scan(app, &w.gate, &qr(s + 1), "exit").await;
        assert_eq!(out["outcome"], "pass", "{out}");
        app.desk.clock.advance(chrono::Duration::seconds(90));
        let s = s + 3;
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(s), "exit").await),
            "not_inside"
        );
        // A screenshot from two minutes ago is stale.
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(s - 4), "entry").await),
            "wrong_time"
        );
        // A revoked rider is refused.
        w.admin
            .post(
                app,
                &format!("/gate/riders/{}/status", w.rider),
                json!({ "status": "revoked" }),
            )
            .await;
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(s + 1), "entry").await),
            "rider_revoked"
        );
        // Garbage is a deny, not an error.
        assert_eq!(
            reason(&scan(app, &w.gate, "LX1:NOT A PASS", "entry").await),
            "malformed"
        );
        // Every scan is logged, with no personal data.
        let gates: Value = w
            .admin
            .c
            .get(api(app, "/gate/gates"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let gate_id = gates["gates"][0]["id"].as_i64().unwrap();
        let events: Value = w
            .admin
            .c
            .get(api(app, &format!("/gate/gates/{gate_id}/events")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let outcomes: Vec<&str> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes,
            [
                "malformed",
                "rider_revoked",
                "wrong_time",
                "not_inside",
                "pass",
                "replayed",
                "pass"
            ]
        );
        // A revoked rider gets no new ticket.
        let r = rider.get(api(app, "/gate/my-ticket")).send().await.unwrap();
        expect_error(r, 409, "conflict").await;
    }

    pub async fn offline_lists_are_signed_by_the_issuer(app: &App) {
        let w = world(app).await;
        let trust: Value = bearer_get(app, &w.gate, "/gate/trust")
            .await
            .json()
            .await
            .unwrap();
        let payload: Value = serde_json::from_str(trust["payload"].as_str().unwrap()).unwrap();
        let key = payload["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == trust["kid"])
            .expect("the signing key is in the list");
        let verify = |list: &Value| {
            let pk: [u8; 32] = hex::decode(key["public_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let sig: [u8; 64] = hex::decode(list["signature"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            VerifyingKey::from_bytes(&pk)
                .unwrap()
                .verify(
                    list["payload"].as_str().unwrap().as_bytes(),
                    &Signature::from_bytes(&sig),
                )
                .is_ok()
        };
        assert!(verify(&trust));
        // The rider holds a ticket bound to the device …
        assert_eq!(
            put_order(app, &w.platform, "MT-R1", order_body(app, w.rider))
                .await
                .status(),
            201
        );
        let (rider_c, _) = login(app, "rider.wang").await;
        let r = rider_c
            .get(api(app, "/gate/my-ticket"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // … so revoking the device puts it on the signed revocation list.
        let rider: Value = w
            .admin
            .c
            .get(api(app, &format!("/gate/riders/{}", w.rider)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device = rider["devices"][0]["id"].as_i64().unwrap();
        let r = w
            .admin
            .post(app, &format!("/gate/devices/{device}/revoke"), json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let list: Value = bearer_get(app, &w.gate, "/gate/revocations")
            .await
            .json()
            .await
            .unwrap();
        assert!(verify(&list));
        let payload: Value = serde_json::from_str(list["payload"].as_str().unwrap()).unwrap();
        assert_eq!(
            payload["device_keys"],
            json!([hex::encode(w.device.verifying_key().to_bytes())])
        );
        // After a rotation both keys are listed, the old one with its end.
        let rotated: Value = w
            .admin
            .post(
                app,
                "/gate/issuer-keys/rotate",
                json!({ "overlap_seconds": 600 }),
            )
            .await
            .json()
            .await
            .unwrap();
        let keys = rotated["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys.iter()
                .filter(|k| k["accepted_until"].is_null())
                .count(),
            1
        );
        // The platform's token cannot read the lists.
        expect_error(
            bearer_get(app, &w.platform, "/gate/trust").await,
            403,
            "forbidden",
        )
        .await;
    }

    /// The online scan keeps the trust list in memory: a rotation, a new key and the
    /// end of an overlap must still take effect at the next scan.
    pub async fn a_rotation_reaches_the_online_scan_at_once(app: &App) {
        let w = world(app).await;
        let r = put_order(app, &w.platform, "MT-R", order_body(app, w.rider)).await;
        assert_eq!(r.status(), 201);
        let (rider, rider_csrf) = login(app, "rider.wang").await;
        let fetch = || async {
            let t: Value = rider
                .get(api(app, "/gate/my-ticket"))
                .header("x-csrf-token", &rider_csrf)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(t["ticket"].as_str().unwrap())
                .unwrap();
            (bytes, t["compound_id"].as_u64().unwrap())
        };
        let (old, compound) = fetch().await;
        let qr = |t: &[u8], step: u64| Pass::prove(t, compound, step, &w.device).encode();
        let step = || u64::try_from(app.desk.now().timestamp()).unwrap() / 30;
        // The first scan reads the trust list (and keeps it).
        let s = step();
        let v = scan(app, &w.gate, &qr(&old, s), "entry").await;
        assert_eq!(v["outcome"], "pass", "{v}");
        // Rotate with a 60 s overlap: the old ticket still passes, the new one too
        // (its key id is new to the kept list).
        let r = w
            .admin
            .post(
                app,
                "/gate/issuer-keys/rotate",
                json!({ "overlap_seconds": 60 }),
            )
            .await;
        assert_eq!(r.status(), 200);
        let v = scan(app, &w.gate, &qr(&old, s + 1), "exit").await;
        assert_eq!(v["outcome"], "pass", "{v}");
        let (new, _) = fetch().await;
        assert_ne!(new, old);
        let v = scan(app, &w.gate, &qr(&new, s), "entry").await;
        assert_eq!(v["outcome"], "pass", "{v}");
        // Once the overlap is over, the old key is gone at once.
        app.desk.clock.advance(chrono::Duration::seconds(120));
        let s = step();
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(&old, s), "entry").await),
            "unknown_issuer"
        );
        let v = scan(app, &w.gate, &qr(&new, s), "exit").await;
        assert_eq!(v["outcome"], "pass", "{v}");
    }

    pub async fn bad_input_is_a_clear_4xx(app: &App) {
        let w = world(app).await;
        let a = &w.admin;
        // Admin endpoints.
        expect_error(
            a.post(
                app,
                "/gate/platforms",
                json!({ "code": "bad code!", "name": "x" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/platforms",
                json!({ "code": "meituan", "name": "again" }),
            )
            .await,
            409,
            "conflict",
        )
        .await;
        expect_error(
            a.post(app, "/gate/platforms", json!({ "code": 5 })).await,
            422,
            "invalid_field",
        )
        .await;
        let rider = |patch: Value| {
            let mut b = json!({ "platform": "meituan", "name": "李四", "id_card": id_card(2), "region": "150207" });
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            a.post(app, "/gate/riders", b)
        };
        expect_error(
            rider(json!({ "id_card": "123" })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            rider(json!({ "id_card": id_card(1) })).await,
            409,
            "conflict",
        )
        .await;
        expect_error(
            rider(json!({ "platform": "nobody" })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(rider(json!({ "region": "15" })).await, 422, "invalid_field").await;
        expect_error(
            rider(json!({ "account_id": 1 })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            rider(json!({ "username": "li.si" })).await,
            422,
            "invalid_field",
        )
        .await;
        // A refused registration leaves no account behind: the username is still free.
        let with_account = json!({ "id_card": "123", "username": "li.si", "password": PASSWORD });
        expect_error(rider(with_account).await, 422, "invalid_field").await;
        let with_account =
            json!({ "id_card": id_card(3), "username": "li.si", "password": PASSWORD });
        assert_eq!(rider(with_account).await.status(), 201);
        let taken = json!({ "id_card": id_card(4), "username": "li.si", "password": PASSWORD });
        expect_error(rider(taken).await, 409, "conflict").await;
        expect_error(
            a.post(
                app,
                &format!("/gate/riders/{}/status", w.rider),
                json!({ "status": "gone" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/riders/999/status",
                json!({ "status": "active" }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            a.post(
                app,
                &format!("/gate/riders/{}/devices", w.rider),
                json!({ "public_key": "zz" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            a.post(app, "/gate/riders/x/devices", json!({ "public_key": "zz" }))
                .await,
            400,
            "invalid_path",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/riders/999/devices",
                json!({ "public_key": hex::encode([9u8; 32]) }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            a.post(app, "/gate/devices/999/revoke", json!({})).await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/gates",
                json!({ "compound": "nowhere", "name": "x" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/gates",
                json!({ "compound": "150207.BYXL.KY", "name": "" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/issuer-keys/rotate",
                json!({ "overlap_seconds": -1 }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            a.post(
                app,
                "/gate/issuer-keys/rotate",
                json!({ "overlap_seconds": 99999999 }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        // Orders: only a platform token; each field checked.
        expect_error(
            put_order(app, &w.gate, "MT-9", order_body(app, w.rider)).await,
            403,
            "forbidden",
        )
        .await;
        let r =
            a.c.put(api(app, "/gate/orders/MT-9"))
                .header("x-csrf-token", &a.csrf)
                .json(&order_body(app, w.rider))
                .send()
                .await
                .unwrap();
        expect_error(r, 403, "forbidden").await;
        let order = |patch: Value| {
            let mut b = order_body(app, w.rider);
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            put_order(app, &w.platform, "MT-9", b)
        };
        expect_error(
            order(json!({ "rider_id": 999 })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            order(json!({ "compound": "nowhere" })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            order(json!({ "building": "150207.BYXL.HX" })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            order(json!({ "window_from": "yesterday" })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            order(json!({ "window_until": "2020-01-01T00:00:00Z" })).await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            order(json!({ "rider_id": "one" })).await,
            422,
            "invalid_field",
        )
        .await;
        let long = "x".repeat(65);
        expect_error(
            put_order(app, &w.platform, &long, order_body(app, w.rider)).await,
            422,
            "invalid_field",
        )
        .await;
        // The ticket: riders only; none without an order.
        expect_error(
            a.c.get(api(app, "/gate/my-ticket")).send().await.unwrap(),
            403,
            "forbidden",
        )
        .await;
        let (rider_c, _) = login(app, "rider.wang").await;
        expect_error(
            rider_c
                .get(api(app, "/gate/my-ticket"))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
        let (seeded, _) = login(app, "rider").await;
        expect_error(
            seeded
                .get(api(app, "/gate/my-ticket"))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
        // Scans: a gate token only; bad JSON and bad directions are 4xx.
        let scan_raw = |token: &str, body: &'static str| {
            reqwest::Client::new()
                .post(api(app, "/gate/scan"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        expect_error(
            scan_raw(&w.gate, "{not json").await.unwrap(),
            400,
            "malformed_json",
        )
        .await;
        expect_error(
            scan_raw(&w.gate, r#"{"qr":"LX1:","direction":"sideways"}"#)
                .await
                .unwrap(),
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            scan_raw(&w.gate, r#"{"direction":"entry"}"#).await.unwrap(),
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            scan_raw(&w.platform, r#"{"qr":"LX1:","direction":"entry"}"#)
                .await
                .unwrap(),
            403,
            "forbidden",
        )
        .await;
        let r = a
            .post(
                app,
                "/gate/scan",
                json!({ "qr": "LX1:", "direction": "entry" }),
            )
            .await;
        expect_error(r, 403, "forbidden").await;
        let r = reqwest::Client::new()
            .post(api(app, "/gate/scan"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "unauthenticated").await;
        // Lists: not for riders.
        expect_error(
            rider_c
                .get(api(app, "/gate/revocations"))
                .send()
                .await
                .unwrap(),
            403,
            "forbidden",
        )
        .await;
    }

    /// The rider's page path: the phone binds its own key (retiring the old phone),
    /// fetches the ticket and shows a QR; the gate's tablet, signed in as a
    /// `gate_device` account, scans it with its session.
    pub async fn the_phone_binds_itself_and_the_gate_page_scans(app: &App) {
        let w = world(app).await;
        assert_eq!(
            put_order(app, &w.platform, "MT-P1", order_body(app, w.rider))
                .await
                .status(),
            201
        );
        let (rider, rider_csrf) = login(app, "rider.wang").await;
        let bind = |key: &SigningKey| {
            rider
                .post(api(app, "/gate/my-device"))
                .header("x-csrf-token", &rider_csrf)
                .json(&json!({ "public_key": hex::encode(key.verifying_key().to_bytes()) }))
                .send()
        };
        let phone = SigningKey::from_bytes(&[9; 32]);
        let bound = bind(&phone).await.unwrap();
        assert_eq!(bound.status(), 201);
        // Without the CSRF header a session cannot bind; nor can anyone but a rider.
        let r = rider
            .post(api(app, "/gate/my-device"))
            .json(&json!({ "public_key": hex::encode([1u8; 32]) }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let (resident, resident_csrf) = login(app, "resident").await;
        let r = resident
            .post(api(app, "/gate/my-device"))
            .header("x-csrf-token", &resident_csrf)
            .json(&json!({ "public_key": hex::encode(phone.verifying_key().to_bytes()) }))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
        // A key that is no Ed25519 point is a clear 4xx.
        let r = rider
            .post(api(app, "/gate/my-device"))
            .header("x-csrf-token", &rider_csrf)
            .json(&json!({ "public_key": "zz" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);

        let ticket = |c: reqwest::Client| async move {
            let t: Value = c
                .get(api(app, "/gate/my-ticket"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            t
        };
        let t = ticket(rider.clone()).await;
        assert_eq!(t["compound_name"], "开元社区");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t["ticket"].as_str().unwrap())
            .unwrap();
        let compound = t["compound_id"].as_u64().unwrap();
        let s = u64::try_from(app.desk.now().timestamp()).unwrap() / 30;

        // The tablet: a gate bound to the gate_device account, scanning by session.
        let r = w
            .admin
            .post(
                app,
                "/gate/gates",
                json!({ "compound": "150207.BYXL.KY", "name": "北门平板", "account": "gate.ky" }),
            )
            .await;
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        assert!(
            created.get("token").is_none(),
            "a session gate gets no token"
        );
        let (tablet, tablet_csrf) = login(app, "gate.ky").await;
        let page = tablet
            .get(format!("{}/gate/scan", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("北门平板") && html.contains("/assets/vendor/jsQR.js"));
        let scan_by_page = |qr: String| {
            tablet
                .post(api(app, "/gate/scan"))
                .header("x-csrf-token", &tablet_csrf)
                .json(&json!({ "qr": qr, "direction": "entry" }))
                .send()
        };
        let qr = Pass::prove(&bytes, compound, s, &phone).encode();
        let v: Value = scan_by_page(qr.clone())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["outcome"], "pass", "{v}");

        // A second phone binds: the first is revoked, its next code refused.
        let second = SigningKey::from_bytes(&[10; 32]);
        assert_eq!(bind(&second).await.unwrap().status(), 201);
        let old = Pass::prove(&bytes, compound, s + 1, &phone).encode();
        let v: Value = scan_by_page(old).await.unwrap().json().await.unwrap();
        assert_eq!(reason(&v), "device_revoked");
        // The new phone gets a ticket of its own, living at most two hours.
        let t2 = ticket(rider.clone()).await;
        assert_ne!(t2["ticket"], t["ticket"]);
        let now = app.desk.now().timestamp();
        assert!(t2["not_after"].as_i64().unwrap() <= now + 2 * 3600);

        // A rider's session cannot scan, a resident cannot see the tablet's page.
        let r = rider
            .post(api(app, "/gate/scan"))
            .header("x-csrf-token", &rider_csrf)
            .json(&json!({ "qr": qr, "direction": "entry" }))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
        let r = resident
            .get(format!("{}/gate/scan", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // An administrator revoking the phone signs the rider out everywhere, so a
        // lost phone cannot simply bind itself again.
        let devices: Value = w
            .admin
            .c
            .get(api(app, &format!("/gate/riders/{}", w.rider)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let active = devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["active"] == true)
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let r = w
            .admin
            .post(app, &format!("/gate/devices/{active}/revoke"), json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let r = rider.get(api(app, "/me")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let (rider, _) = login(app, "rider.wang").await;
        // The rider's own page loads the phone's scripts, the vendored encoder first.
        let html = rider
            .get(format!("{}/pass", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let encoder = html.find("/assets/vendor/qrcode.js").expect("encoder");
        assert!(encoder < html.find("/assets/pass.js").expect("pass.js"));
        for asset in [
            "/assets/pass.js",
            "/assets/gate.js",
            "/assets/vendor/qrcode.js",
            "/assets/vendor/jsQR.js",
        ] {
            let r = client()
                .get(format!("{}{asset}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{asset}");
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript"));
        }
    }

    /// `/gate/log`: the compound's worker and its property company see its scans and
    /// figures; another community's worker is not offered it, and naming it is 404.
    pub async fn the_gate_log_is_for_the_compound_and_its_property_company(app: &App) {
        let w = world(app).await;
        assert_eq!(
            put_order(app, &w.platform, "MT-L1", order_body(app, w.rider))
                .await
                .status(),
            201
        );
        let (rider, _) = login(app, "rider.wang").await;
        let t: Value = rider
            .get(api(app, "/gate/my-ticket"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t["ticket"].as_str().unwrap())
            .unwrap();
        let compound = t["compound_id"].as_u64().unwrap();
        let s = u64::try_from(app.desk.now().timestamp()).unwrap() / 30;
        let qr = |step: u64| Pass::prove(&bytes, compound, step, &w.device).encode();
        // Refused first (a stale code), then in, a replay, then out.
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(s - 5), "entry").await),
            "wrong_time"
        );
        assert_eq!(scan(app, &w.gate, &qr(s), "entry").await["outcome"], "pass");
        assert_eq!(
            reason(&scan(app, &w.gate, &qr(s), "entry").await),
            "replayed"
        );
        assert_eq!(
            scan(app, &w.gate, &qr(s + 1), "exit").await["outcome"],
            "pass"
        );

        for who in ["ky.worker", "ky.wy", "admin"] {
            let (c, _) = login(app, who).await;
            let html = c
                .get(format!(
                    "{}/gate/log?compound=150207.BYXL.KY&days=1",
                    app.base
                ))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let stat = |id: &str| {
                let at = html
                    .find(&format!("id=\"{id}\""))
                    .unwrap_or_else(|| panic!("{who}: {id}"));
                let rest = &html[at..];
                let v = rest.find("stat-value\">").unwrap() + "stat-value\">".len();
                rest[v..v + rest[v..].find('<').unwrap()].to_string()
            };
            assert_eq!(stat("gate-entries"), "1", "{who}");
            assert_eq!(stat("gate-exits"), "1", "{who}");
            assert_eq!(stat("gate-refused"), "2", "{who}");
            // One pass of two came after a refusal.
            assert_eq!(stat("gate-first-try"), "50%", "{who}");
            assert!(html.contains("data-reason=\"replayed\""), "{who}");
            // The platform is named; the rider is not.
            assert!(html.contains("美团") && !html.contains("王"), "{who}");
            let csv = c
                .get(format!(
                    "{}/gate/log.csv?compound=150207.BYXL.KY&days=1",
                    app.base
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(csv.status(), 200);
            let text = csv.text().await.unwrap();
            assert_eq!(text.lines().count(), 1 + 4, "{who}: {text}");
        }
        // The same figures as JSON for a session allowed the gate log.
        let (wy, _) = login(app, "ky.wy").await;
        let v: Value = wy
            .get(api(app, "/gate/log?compound=150207.BYXL.KY&days=1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["stats"]["entries"], 1, "{v}");
        assert_eq!(v["stats"]["first_try_share"], 0.5);
        assert_eq!(v["scans"].as_array().unwrap().len(), 4);
        let (resident, _) = login(app, "resident").await;
        let r = resident.get(api(app, "/gate/log")).send().await.unwrap();
        expect_error(r, 403, "forbidden").await;
        let (other, _) = login(app, "hx.worker").await;
        let html = other
            .get(format!("{}/gate/log", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Only its own compound's gate (和谐社区 has one too) is offered.
        assert!(
            html.contains("和谐社区") && !html.contains("开元社区"),
            "{html}"
        );
        let r = other
            .get(format!("{}/gate/log?compound=150207.BYXL.KY", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let (resident, _) = login(app, "resident").await;
        let r = resident
            .get(format!("{}/gate/log", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let (c, _) = login(app, "ky.worker").await;
        let r = c
            .get(format!("{}/gate/log?days=5", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
}
