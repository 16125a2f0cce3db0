//! Black-box tests of the demand closed loop over HTTP: the whole loop, bad input,
//! scope, idempotency keys, live progress (server-sent events), and the scheduler on a
//! controllable clock (warnings, overdue escalation, rating reminders, closing unrated
//! answers, and a restart that loses no timer). Each runs on every engine available.

mod common;

use common::*;
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
    the_whole_loop_with_a_reopen,
    bad_input_is_refused_and_nothing_is_stored,
    scope_decides_who_sees_and_acts,
    idempotency_keys_replay_and_refuse,
    progress_is_pushed_live,
    overdue_demands_escalate_on_a_controllable_clock,
    unrated_answers_are_reminded_then_closed,
    transfers_keep_the_first_receiver_accountable,
    rate_cells_agree_with_a_full_scan,
    concurrent_submissions_each_get_their_own_demand,
);

/// A logged-in client that sends its CSRF token on writes.
struct Session {
    c: reqwest::Client,
    csrf: String,
    base: String,
}

impl Session {
    async fn new(app: &App, user: &str) -> Session {
        let (c, csrf) = login(app, user).await;
        Session {
            c,
            csrf,
            base: app.base.clone(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.c
            .get(format!("{}/api/v1{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.c
            .post(format!("{}/api/v1{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// Takes a step and returns the demand after it.
    async fn act(&self, id: i64, body: Value) -> Value {
        let r = self
            .post(&format!("/demands/{id}/actions"), body.clone())
            .await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{body}: {v}");
        v["demand"].clone()
    }
}

fn demand_body(category: &str, place: &str) -> Value {
    json!({
        "kind": "help",
        "category": category,
        "place": place,
        "description": "楼道灯坏了一周，晚上看不见。",
        "reporter_phone": "13912345678",
    })
}

async fn submit(s: &Session, body: Value) -> Value {
    let r = s.post("/demands", body).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

fn actions(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

mod cases {
    use super::*;
    use chrono::Duration;

    pub async fn the_whole_loop_with_a_reopen(app: &App) {
        let resident = Session::new(app, "resident").await;
        let worker = Session::new(app, "ky.worker").await;
        let s = submit(&resident, demand_body("other", "150207.BYXL.KY")).await;
        let id = s["id"].as_i64().unwrap();
        let token = s["tracking_token"].as_str().unwrap().to_string();
        assert_eq!(s["status"], "received");
        assert_eq!(s["owner_name"], "KY-DW 党委", "routed to the community");
        assert!(token.len() >= 20);

        // The worker's queue has it, with the phone masked.
        let q = worker.json("/demands").await;
        let row = q["demands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .expect("in the worker's queue")
            .clone();
        assert_eq!(row["reporter_phone_masked"], "139****5678");
        assert!(!q.to_string().contains("13912345678"));
        // The unit that must call back may see the number, once per request, audited.
        let r = worker
            .post(&format!("/demands/{id}/reporter-phone"), json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["reporter_phone"], "13912345678");
        let r = resident
            .post(&format!("/demands/{id}/reporter-phone"), json!({}))
            .await;
        expect_error(r, 403, "forbidden").await;
        let admin = Session::new(app, "admin").await;
        let audit = admin.json("/audit?limit=1000").await.to_string();
        assert!(audit.contains("reveal_phone"));
        assert!(
            !audit.contains("13912345678"),
            "the trail names the look, not the number"
        );

        let d = worker
            .act(id, json!({"action": "assess", "urgency": "ordinary"}))
            .await;
        assert_eq!(d["status"], "assessed");
        let ky = d["owner_id"].as_i64().unwrap();
        let d = worker
            .act(id, json!({"action": "assign", "unit_id": ky}))
            .await;
        assert_eq!(d["status"], "assigned");
        assert_eq!(d["handler_id"], ky);
        let d = worker.act(id, json!({"action": "start"})).await;
        assert_eq!(d["status"], "in_progress");
        assert!(d["first_response_at"].is_string());
        let d = worker
            .act(id, json!({"action": "answer", "text": "已更换灯泡。"}))
            .await;
        assert_eq!(d["status"], "answered");

        // The reporter, by the tracking token alone: 不满意 reopens it.
        let c = reqwest::Client::new();
        let t: Value = c
            .get(format!("{}/api/v1/track/{token}", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(t["demand"]["status"], "answered");
        assert_eq!(t["demand"]["answer"], "已更换灯泡。");
        assert!(
            !t.to_string().contains("139"),
            "no phone on the public page"
        );
        let r = c
            .post(format!("{}/api/v1/track/{token}/rating", app.base))
            .json(&json!({"rating": "unsatisfied", "comment": "灯还是不亮"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let d = worker.json(&format!("/demands/{id}")).await;
        assert_eq!(d["demand"]["status"], "assigned", "reopened to the handler");
        assert_eq!(d["demand"]["reopened"], 1);
        assert_eq!(d["demand"]["handler_id"], ky);

        worker.act(id, json!({"action": "start"})).await;
        worker
            .act(id, json!({"action": "answer", "text": "已更换线路。"}))
            .await;
        // The reporter's account may rate too.
        let r = resident
            .post(
                &format!("/demands/{id}/rating"),
                json!({"rating": "satisfied"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let d = worker.json(&format!("/demands/{id}")).await;
        assert_eq!(d["demand"]["status"], "closed");
        assert_eq!(d["demand"]["rating"], "satisfied");
        assert_eq!(
            actions(&d["events"]),
            [
                "submit",
                "assess",
                "assign",
                "start",
                "answer",
                "rate_reopen",
                "start",
                "answer",
                "rate"
            ]
        );
        // A closed demand takes no more steps.
        let r = worker
            .post(
                &format!("/demands/{id}/actions"),
                json!({"action": "start"}),
            )
            .await;
        expect_error(r, 409, "wrong_state").await;

        // The three rates count it: responded in time, resolved, satisfied.
        let rates = worker.json("/rates?group=total").await;
        let counts = &rates["total"]["counts"];
        assert_eq!(counts["received"], 1);
        assert_eq!(counts["responded_in_time"], 1);
        assert_eq!(counts["resolved"], 1);
        assert_eq!(counts["rated"], 1);
        assert_eq!(counts["satisfied"], 1);
        assert_eq!(rates["total"]["rates"]["satisfaction"], 1.0);
    }

    pub async fn bad_input_is_refused_and_nothing_is_stored(app: &App) {
        let resident = Session::new(app, "resident").await;
        let worker = Session::new(app, "ky.worker").await;
        let with = |k: &str, v: Value| {
            let mut b = demand_body("other", "150207.BYXL.KY");
            b[k] = v;
            b
        };
        let cases = [
            (with("category", json!("no_such")), "category"),
            (with("place", json!("999999")), "place"),
            (with("description", json!("   ")), "description"),
            (with("kind", json!("praise")), "kind"),
            (with("reporter_phone", json!("12345")), "phone"),
            (with("photos", json!(["aGVsbG8gd29ybGQ="])), "photos"),
            (with("photos", json!(["%%%"])), "photos"),
            (with("lat", json!(95.0)), "lat"),
        ];
        for (body, field) in cases {
            let r = resident.post("/demands", body.clone()).await;
            let e = expect_error(r, 422, "invalid_field").await;
            assert!(
                e["error"]["field"].as_str().unwrap().contains(field),
                "{body}: {e}"
            );
        }
        // A photo that is an image but too large.
        let mut big = vec![0xFFu8, 0xD8, 0xFF];
        big.resize(lianxin_domain::intake::MAX_PHOTO_BYTES + 10, 0);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&big);
        let r = resident
            .post("/demands", with("photos", json!([b64])))
            .await;
        let e = expect_error(r, 422, "invalid_field").await;
        assert!(e["error"]["message"].as_str().unwrap().contains("MB"));
        // Nothing was stored by any of them.
        assert!(worker.json("/demands").await["demands"]
            .as_array()
            .unwrap()
            .is_empty());

        // A good one with a real (tiny) PNG photo.
        let png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        let s = submit(
            &resident,
            with(
                "photos",
                json!([base64::engine::general_purpose::STANDARD.encode(png)]),
            ),
        )
        .await;
        let id = s["id"].as_i64().unwrap();
        let d = worker.json(&format!("/demands/{id}")).await;
        let photo = d["photo_ids"][0].as_i64().unwrap();
        let r = worker.get(&format!("/demands/{id}/photos/{photo}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(&r.bytes().await.unwrap()[..], png);

        // Steps: wrong state, missing text, past deadline, unknown action, unknown unit.
        let path = format!("/demands/{id}/actions");
        let act = |b: Value| worker.post(&path, b);
        expect_error(act(json!({"action": "start"})).await, 409, "wrong_state").await;
        expect_error(
            act(json!({"action": "answer", "text": "x"})).await,
            409,
            "wrong_state",
        )
        .await;
        let e = expect_error(
            act(json!({"action": "assess", "deadline": "2001-01-01T00:00:00Z"})).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "deadline");
        expect_error(act(json!({"action": "fly"})).await, 422, "invalid_field").await;
        expect_error(
            act(json!({"action": "assign", "unit_id": 999_999})).await,
            422,
            "invalid_field",
        )
        .await;
        let e = expect_error(act(json!({"action": "reject"})).await, 422, "invalid_field").await;
        assert_eq!(e["error"]["field"], "reason", "a rejection needs a reason");
        worker.act(id, json!({"action": "assess"})).await;
        expect_error(act(json!({"action": "start"})).await, 409, "wrong_state").await;
        let ky = worker.json(&format!("/demands/{id}")).await["demand"]["owner_id"].clone();
        worker
            .act(id, json!({"action": "assign", "unit_id": ky}))
            .await;
        let e = expect_error(
            act(json!({"action": "answer", "text": "  "})).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "answer");
        // Rating: by staff, not the reporter; before an answer; a bad value.
        let r = worker
            .post(
                &format!("/demands/{id}/rating"),
                json!({"rating": "satisfied"}),
            )
            .await;
        expect_error(r, 403, "not_yours").await;
        let r = resident
            .post(
                &format!("/demands/{id}/rating"),
                json!({"rating": "satisfied"}),
            )
            .await;
        expect_error(r, 409, "wrong_state").await;
        let r = resident
            .post(&format!("/demands/{id}/rating"), json!({"rating": "great"}))
            .await;
        expect_error(r, 422, "invalid_field").await;
        // The history shows only the steps that happened.
        let d = worker.json(&format!("/demands/{id}")).await;
        assert_eq!(actions(&d["events"]), ["submit", "assess", "assign"]);
        // Unknown tracking tokens are 404s.
        let r = reqwest::get(format!("{}/api/v1/track/nope", app.base))
            .await
            .unwrap();
        expect_error(r, 404, "not_found").await;
    }

    pub async fn scope_decides_who_sees_and_acts(app: &App) {
        let resident = Session::new(app, "resident").await;
        let other_resident = Session::new(app, "resident2").await;
        let worker = Session::new(app, "ky.worker").await;
        let official = Session::new(app, "official").await;
        let rider = Session::new(app, "rider").await;
        let hx = submit(&resident, demand_body("other", "150207.BYXL.HX")).await;
        let hx_id = hx["id"].as_i64().unwrap();
        let ky = submit(&resident, demand_body("other", "150207.BYXL.KY")).await;
        let ky_id = ky["id"].as_i64().unwrap();
        // The 开元 worker sees 开元's demand, not 和谐's.
        expect_error(
            worker.get(&format!("/demands/{hx_id}")).await,
            404,
            "not_found",
        )
        .await;
        assert_eq!(worker.get(&format!("/demands/{ky_id}")).await.status(), 200);
        let r = worker
            .post(
                &format!("/demands/{hx_id}/actions"),
                json!({"action": "assess"}),
            )
            .await;
        expect_error(r, 404, "not_found").await;
        // The district official sees both; the reporter sees their own; others nothing.
        assert_eq!(
            official.json("/demands").await["demands"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            resident.get(&format!("/demands/{hx_id}")).await.status(),
            200
        );
        expect_error(
            other_resident.get(&format!("/demands/{hx_id}")).await,
            404,
            "not_found",
        )
        .await;
        assert!(other_resident.json("/demands").await["demands"]
            .as_array()
            .unwrap()
            .is_empty());
        expect_error(rider.get("/rates").await, 403, "forbidden").await;
        let r = rider
            .post(
                &format!("/demands/{ky_id}/actions"),
                json!({"action": "assess"}),
            )
            .await;
        expect_error(r, 403, "forbidden").await;
        // Rules are admin-only to change.
        let r = worker
            .post(
                "/routing-rules",
                json!({"place": "150207", "unit": "KY-DW"}),
            )
            .await;
        expect_error(r, 403, "forbidden").await;
        // The property repair at 开元 goes straight to the property company.
        let s = submit(&resident, demand_body("property_repair", "150207.BYXL.KY")).await;
        assert_eq!(s["owner_name"], "KY-WY 党委");
        assert_eq!(
            s["status"], "received",
            "a repair raised on the web form waits for 研判"
        );
        // The one-tap repair form dispatches at once: the company holds the work.
        let mut repair = demand_body("property_repair", "150207.BYXL.KY");
        repair["channel"] = json!("property_repair");
        let s = submit(&resident, repair).await;
        assert_eq!(s["status"], "assigned");
        let d = resident.json(&format!("/demands/{}", s["id"])).await;
        assert_eq!(d["demand"]["handler_name"], "KY-WY 党委");
        assert_eq!(d["demand"]["owner_name"], "KY-WY 党委");
        // A token needs the demands scope to submit.
        let admin = Session::new(app, "admin").await;
        let me = admin.json("/me").await;
        let t: Value = admin
            .post(
                "/tokens",
                json!({"account_id": me["account"]["id"], "name": "ro", "scopes": ["registry:read"]}),
            )
            .await
            .json()
            .await
            .unwrap();
        let ro = t["token"].as_str().unwrap().to_string();
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/demands", app.base))
            .bearer_auth(&ro)
            .json(&demand_body("other", "150207.BYXL.KY"))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
        // … and a demands scope to read them, even as an administrator.
        for path in [
            "/demands".to_string(),
            format!("/demands/{ky_id}"),
            "/notices".to_string(),
        ] {
            let r = reqwest::Client::new()
                .get(format!("{}/api/v1{path}", app.base))
                .bearer_auth(&ro)
                .send()
                .await
                .unwrap();
            expect_error(r, 403, "forbidden").await;
        }
        // A calendar upload is one year at a time.
        let two_years = "[2027]\noff = [\"2027-01-01\"]\nwork = []\n[2028]\noff = [\"2028-01-01\"]\nwork = []\n";
        let r = admin
            .c
            .put(format!("{}/api/v1/calendar/2027", app.base))
            .header("x-csrf-token", &admin.csrf)
            .json(&json!({ "toml": two_years }))
            .send()
            .await
            .unwrap();
        let e = expect_error(r, 422, "invalid_field").await;
        assert_eq!(e["error"]["field"], "toml", "{e}");
    }

    pub async fn idempotency_keys_replay_and_refuse(app: &App) {
        let resident = Session::new(app, "resident").await;
        let send = |key: &str, body: Value| {
            resident
                .c
                .post(format!("{}/api/v1/demands", app.base))
                .header("x-csrf-token", &resident.csrf)
                .header("idempotency-key", key)
                .json(&body)
                .send()
        };
        let body = demand_body("other", "150207.BYXL.KY");
        let first = send("k-1", body.clone()).await.unwrap();
        assert_eq!(first.status(), 201);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first: Value = first.json().await.unwrap();
        let again = send("k-1", body.clone()).await.unwrap();
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again, first, "the retry gets the original result");
        let mut other = body.clone();
        other["description"] = json!("另一件事");
        expect_error(
            send("k-1", other).await.unwrap(),
            409,
            "idempotency_key_reused",
        )
        .await;
        expect_error(
            send(&"k".repeat(300), body.clone()).await.unwrap(),
            400,
            "invalid_header",
        )
        .await;
        // A refused request is replayed as refused, not run again.
        let mut bad = body.clone();
        bad["category"] = json!("nope");
        let r1 = send("k-2", bad.clone()).await.unwrap();
        assert_eq!(r1.status(), 422);
        let r2 = send("k-2", bad).await.unwrap();
        assert_eq!(r2.status(), 422);
        assert_eq!(r2.headers()["idempotent-replayed"], "true");
        // Exactly one demand exists.
        let mine = resident.json("/demands?mine=1").await;
        assert_eq!(mine["demands"].as_array().unwrap().len(), 1);
        // Keys are per caller: another account's same key is a fresh request.
        let other_resident = Session::new(app, "resident2").await;
        let r = other_resident
            .c
            .post(format!("{}/api/v1/demands", app.base))
            .header("x-csrf-token", &other_resident.csrf)
            .header("idempotency-key", "k-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(r.headers().get("idempotent-replayed").is_none());
    }

    pub async fn progress_is_pushed_live(app: &App) {
        use futures::StreamExt;
        let resident = Session::new(app, "resident").await;
        let worker = Session::new(app, "ky.worker").await;
        let s = submit(&resident, demand_body("other", "150207.BYXL.KY")).await;
        let id = s["id"].as_i64().unwrap();
        let token = s["tracking_token"].as_str().unwrap();
        let r = reqwest::get(format!("{}/api/v1/track/{token}/stream", app.base))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut stream = r.bytes_stream();
        let mut seen = String::new();
        // Reads until `needle` arrives (a guard stops a broken stream hanging the test).
        async fn read_until(
            stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
            seen: &mut String,
            needle: &str,
        ) {
            let found = tokio::time::timeout(std::time::Duration::from_secs(20), async {
                while !seen.contains(needle) {
                    match stream.next().await {
                        Some(Ok(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                        _ => return false,
                    }
                }
                true
            })
            .await;
            assert!(matches!(found, Ok(true)), "no {needle} in {seen}");
        }
        read_until(&mut stream, &mut seen, "\"status\":\"received\"").await;
        worker.act(id, json!({"action": "assess"})).await;
        read_until(&mut stream, &mut seen, "\"status\":\"assessed\"").await;
        assert!(seen.contains("event: demand"));
        assert!(!seen.contains("13912345678"));
    }

    pub async fn overdue_demands_escalate_on_a_controllable_clock(app: &App) {
        let resident = Session::new(app, "resident").await;
        let official = Session::new(app, "official").await;
        let s = submit(&resident, demand_body("other", "150207.BYXL.HX")).await;
        let id = s["id"].as_i64().unwrap();
        let deadline: chrono::DateTime<chrono::Utc> =
            s["deadline"].as_str().unwrap().parse().unwrap();
        let now = app.desk.now();
        // Nothing is due yet.
        app.desk.tick().await.unwrap();
        let d = official.json(&format!("/demands/{id}")).await;
        assert_eq!(actions(&d["events"]), ["submit"]);

        // 90% of the way to the deadline: a warning for the accountable unit.
        let span = deadline - now;
        app.desk.clock.advance(span * 9 / 10);
        app.desk.tick().await.unwrap();
        let d = official.json(&format!("/demands/{id}")).await;
        assert_eq!(actions(&d["events"]), ["submit", "warn"]);
        assert_eq!(d["demand"]["overdue"], false);

        // Past the deadline: overdue, and escalated one level up (the street).
        app.desk.clock.advance(span / 10 + Duration::minutes(1));
        app.desk.tick().await.unwrap();
        let d = official.json(&format!("/demands/{id}")).await;
        assert_eq!(d["demand"]["overdue"], true);
        assert_eq!(d["demand"]["escalation_level"], 1);
        assert_eq!(d["demand"]["supervisor_name"], "BYXL-DGW 党委");
        assert_eq!(actions(&d["events"]), ["submit", "warn", "escalate"]);
        // The street's officials now see it (supervision) and get a notice, as does an
        // administrator (every unit's notices).
        let admin = Session::new(app, "admin").await;
        assert!(admin.json("/notices").await["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "escalated"));
        let notices = official.json("/notices").await;
        assert!(notices["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "escalated" && n["demand_id"] == id));
        // Its response is now judged: not in time.
        let rates = official.json("/rates?group=total").await;
        assert_eq!(rates["total"]["counts"]["response_due"], 1);
        assert_eq!(rates["total"]["counts"]["responded_in_time"], 0);

        // A restart: a new desk on the same database, with time moved on two more
        // working weeks, finds the pending timer and escalates to the district.
        let restarted =
            lianxin_server::desk::DemandDesk::new(app.store.store.clone(), app.key.clone());
        restarted.reload().await.unwrap();
        restarted
            .clock
            .advance((app.desk.now() - chrono::Utc::now()) + Duration::days(14));
        assert!(restarted.tick().await.unwrap() >= 1);
        let d = official.json(&format!("/demands/{id}")).await;
        assert_eq!(d["demand"]["escalation_level"], 2);
        assert_eq!(d["demand"]["supervisor_name"], "JY-QW 党委");
        // Nothing more is due: ticking again changes nothing (no busy loop).
        let version = d["demand"]["version"].clone();
        assert_eq!(restarted.tick().await.unwrap(), 0);
        assert_eq!(restarted.tick().await.unwrap(), 0);
        let d = official.json(&format!("/demands/{id}")).await;
        assert_eq!(d["demand"]["version"], version);
        // The top of the chain: no further timer for escalation.
        assert!(d["demand"]["timer_kind"].is_null() || d["demand"]["timer_kind"] != "escalate");
    }

    pub async fn unrated_answers_are_reminded_then_closed(app: &App) {
        let resident = Session::new(app, "resident").await;
        let worker = Session::new(app, "ky.worker").await;
        let s = submit(&resident, demand_body("other", "150207.BYXL.KY")).await;
        let id = s["id"].as_i64().unwrap();
        worker.act(id, json!({"action": "assess"})).await;
        let ky = worker.json(&format!("/demands/{id}")).await["demand"]["owner_id"].clone();
        worker
            .act(id, json!({"action": "assign", "unit_id": ky}))
            .await;
        let d = worker
            .act(id, json!({"action": "answer", "text": "已处理"}))
            .await;
        let rating_deadline: chrono::DateTime<chrono::Utc> =
            d["deadline"].as_str().unwrap().parse().unwrap();
        let span = rating_deadline - app.desk.now();
        app.desk.clock.advance(span * 6 / 10);
        app.desk.tick().await.unwrap();
        let notices = resident.json("/notices").await;
        assert!(notices["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "remind_rating" && n["demand_id"] == id));
        app.desk.clock.advance(span * 4 / 10 + Duration::minutes(1));
        app.desk.tick().await.unwrap();
        let d = worker.json(&format!("/demands/{id}")).await;
        assert_eq!(d["demand"]["status"], "closed");
        assert!(d["demand"]["rating"].is_null());
        assert_eq!(
            actions(&d["events"]),
            [
                "submit",
                "assess",
                "assign",
                "answer",
                "remind_rating",
                "close_unrated"
            ]
        );
        // Too late to rate now.
        let r = resident
            .post(
                &format!("/demands/{id}/rating"),
                json!({"rating": "satisfied"}),
            )
            .await;
        expect_error(r, 409, "wrong_state").await;
    }

    pub async fn transfers_keep_the_first_receiver_accountable(app: &App) {
        let resident = Session::new(app, "resident").await;
        let worker = Session::new(app, "ky.worker").await;
        let official = Session::new(app, "official").await;
        let s = submit(&resident, demand_body("other", "150207.BYXL.KY")).await;
        let id = s["id"].as_i64().unwrap();
        let ky = s["owner_id"].as_i64().unwrap();
        let street = official.json("/orgs?q=BYXL").await["orgs"][0]["id"]
            .as_i64()
            .unwrap();
        let d = worker
            .act(
                id,
                json!({"action": "transfer", "unit_id": street, "reason": "涉及街道统筹"}),
            )
            .await;
        assert_eq!(d["owner_id"], ky, "still accountable until accepted");
        assert_eq!(d["transfer_to"], street);
        // Assigning while the transfer is pending is refused.
        let r = worker
            .post(
                &format!("/demands/{id}/actions"),
                json!({"action": "assign", "unit_id": ky}),
            )
            .await;
        expect_error(r, 409, "wrong_state").await;
        // The 开元 worker cannot accept for the street; the district official can.
        let r = worker
            .post(
                &format!("/demands/{id}/actions"),
                json!({"action": "accept_transfer"}),
            )
            .await;
        expect_error(r, 403, "not_yours").await;
        let d = official.act(id, json!({"action": "accept_transfer"})).await;
        assert_eq!(d["owner_id"], street);
        assert!(d["transfer_to"].is_null());
        // A decline on a second transfer leaves the owner unchanged.
        official
            .act(
                id,
                json!({"action": "transfer", "unit_id": ky, "reason": "退回社区"}),
            )
            .await;
        let d = worker
            .act(
                id,
                json!({"action": "decline_transfer", "reason": "不属于社区职责"}),
            )
            .await;
        assert_eq!(d["owner_id"], street);
        // Merged duplicates and rejections close it.
        let dup = submit(&resident, demand_body("other", "150207.BYXL.KY")).await;
        let dup_id = dup["id"].as_i64().unwrap();
        let d = worker
            .act(dup_id, json!({"action": "merge", "into": id}))
            .await;
        assert_eq!(d["status"], "merged");
        assert_eq!(d["merged_into"], id);
        let rates = official.json("/rates?group=total").await;
        assert_eq!(rates["total"]["counts"]["merged"], 1);
        assert_eq!(rates["total"]["counts"]["received"], 2);
    }

    pub async fn rate_cells_agree_with_a_full_scan(app: &App) {
        let resident = Session::new(app, "resident").await;
        let worker = Session::new(app, "ky.worker").await;
        let mut ids = vec![];
        for i in 0..6 {
            let place = if i % 2 == 0 {
                "150207.BYXL.KY"
            } else {
                "150207.BYXL.HX"
            };
            ids.push(
                submit(&resident, demand_body("other", place)).await["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        // Take the 开元 ones through various stages.
        let ky = worker.json(&format!("/demands/{}", ids[0])).await["demand"]["owner_id"].clone();
        for (n, id) in [ids[0], ids[2], ids[4]].into_iter().enumerate() {
            worker.act(id, json!({"action": "assess"})).await;
            if n >= 1 {
                worker
                    .act(id, json!({"action": "assign", "unit_id": ky}))
                    .await;
                worker
                    .act(id, json!({"action": "answer", "text": "好"}))
                    .await;
            }
            if n == 2 {
                resident
                    .post(
                        &format!("/demands/{id}/rating"),
                        json!({"rating": "basically_satisfied"}),
                    )
                    .await;
            }
        }
        let today = lianxin_domain::calendar::local_day(app.desk.now());
        let cells = app
            .store
            .rate_counts(
                today,
                today,
                None,
                None,
                lianxin_store::demands::RateGroup::Total,
            )
            .await
            .unwrap();
        let scan = app
            .store
            .rate_counts_by_scan(today, today, None, app.desk.now())
            .await
            .unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].counts, scan);
        assert_eq!(scan.received, 6);
        assert_eq!(scan.rated, 1);
        scan.check_invariants().unwrap();
        // Grouped by unit, the cells add up to the total.
        let by_unit = app
            .store
            .rate_counts(
                today,
                today,
                None,
                None,
                lianxin_store::demands::RateGroup::Unit,
            )
            .await
            .unwrap();
        let mut sum = lianxin_domain::rates::RateCounts::default();
        for row in &by_unit {
            sum.merge(&row.counts);
        }
        assert_eq!(sum, scan);
        assert_eq!(by_unit.len(), 2);
    }

    pub async fn concurrent_submissions_each_get_their_own_demand(app: &App) {
        let resident = std::sync::Arc::new(Session::new(app, "resident").await);
        let mut tasks = Vec::new();
        for i in 0..60 {
            let r = resident.clone();
            tasks.push(tokio::spawn(async move {
                let mut body = demand_body("other", "150207.BYXL.KY");
                body["description"] = json!(format!("第{i}件"));
                submit(&r, body).await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            let s = t.await.unwrap();
            let id = s["id"].as_i64().unwrap();
            assert!(ids.insert(id), "ids are distinct");
            // Each tracking token leads to its own demand (intake stores them in batches).
            let token = s["tracking_token"].as_str().unwrap();
            let t: Value = reqwest::get(format!("{}/api/v1/track/{token}", app.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(t["demand"]["id"], id);
            let mine = resident.json(&format!("/demands/{id}")).await;
            assert_eq!(actions(&mine["events"]), ["submit"]);
            let n: usize = mine["demand"]["description"]
                .as_str()
                .unwrap()
                .trim_start_matches('第')
                .trim_end_matches('件')
                .parse()
                .unwrap();
            assert!(n < 60);
        }
        assert_eq!(ids.len(), 60);
        let today = lianxin_domain::calendar::local_day(app.desk.now());
        let cells = app
            .store
            .rate_counts(
                today,
                today,
                None,
                None,
                lianxin_store::demands::RateGroup::Total,
            )
            .await
            .unwrap();
        assert_eq!(cells[0].counts.received, 60);
    }
}
