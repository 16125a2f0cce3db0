//! The offline gate box through a network cut (issue 5, "Done when"): the real
//! server on a socket and a SQLite file, the box in-process on a temporary folder,
//! the box's clock driven by the test.

use super::*;
use lianxin_domain::draft::{PlaceDraft, RawPlace};
use lianxin_domain::person::IdCardNumber;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::DataScope;
use lianxin_pass::Pass;
use lianxin_server::{router, AppState, Settings};
use lianxin_store::audit::Actor;
use lianxin_store::gate::{NewOrder, NewRider};
use lianxin_store::testing::TempDir;
use lianxin_store::Store;

const GATE_TOKEN: &str = "lxt_gate_box_test_token_0123456789abcdef";

struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Serves the application on `addr` (port 0: any) until stopped.
async fn start(store: &Store, key: &PiiKey, addr: &str) -> (Server, String) {
    let state = AppState::new(store.clone(), key.clone(), Settings::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (Server { stop, task }, addr.to_string())
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

fn id_card() -> String {
    let first17 = "150207199001010011";
    let first17 = &first17[..17];
    format!("{first17}{}", IdCardNumber::check_char(first17).unwrap())
}

fn rfc3339(unix: u64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A compound with a gate (token [`GATE_TOKEN`]), a rider with a device and an order
/// there: returns the ticket bytes, the compound id and the device key.
async fn world(store: &Store, key: &PiiKey, now: u64) -> (Vec<u8>, u64, SigningKey) {
    let actor = Actor::system("test");
    let all = DataScope::everything();
    for (code, level, parent) in [
        ("150000", "region", None),
        ("150200", "city", Some("150000")),
        ("150207", "county", Some("150200")),
        ("150207.BYXL", "town", Some("150207")),
        ("150207.BYXL.KY", "village", Some("150207.BYXL")),
    ] {
        let d = PlaceDraft::parse(&RawPlace {
            code: code.into(),
            name: format!("地方{code}"),
            level: level.into(),
            parent_code: parent.map(Into::into),
            ..Default::default()
        })
        .unwrap();
        store.create_place(&actor, &all, &d).await.unwrap();
    }
    let platform = store
        .create_platform(&actor, "meituan", "美团", &PiiKey::token_hash("lxt_p"))
        .await
        .unwrap();
    let rider = store
        .register_rider(
            &actor,
            key,
            &NewRider {
                platform_code: "meituan".into(),
                name: "王小明".into(),
                id_card: id_card(),
                account_id: None,
                new_account: None,
                region: "150207".into(),
            },
            "admin:test",
        )
        .await
        .unwrap();
    let device = SigningKey::from_bytes(&[7; 32]);
    store
        .add_device(&actor, rider.id, &device.verifying_key().to_bytes())
        .await
        .unwrap();
    let gate = store
        .create_gate(
            &actor,
            "150207.BYXL.KY",
            "北门",
            &PiiKey::token_hash(GATE_TOKEN),
        )
        .await
        .unwrap();
    store
        .declare_order(
            &actor,
            platform.id,
            &NewOrder {
                platform_order_id: "MT-1".into(),
                rider_id: rider.id,
                compound_code: "150207.BYXL.KY".into(),
                building_code: None,
                window_from: rfc3339(now - 600),
                window_until: rfc3339(now + 3 * 3600),
            },
        )
        .await
        .unwrap();
    let ticket = store.current_ticket(key, rider.id, now).await.unwrap();
    assert_eq!(ticket.compound_id, gate.compound_id);
    (
        ticket.bytes,
        u64::try_from(gate.compound_id).unwrap(),
        device,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_gate_works_through_a_network_cut() {
    let tmp = TempDir::new("lianxin-gate-box").unwrap();
    let db = format!("sqlite://{}", tmp.0.join("server.db").display());
    let key = PiiKey::from_master(&[9; 32]);
    let store = Store::open(&db).await.unwrap();
    // The box's clock starts at the server's, and the test moves it.
    let t0 = unix_now();
    let (ticket, compound, device) = world(&store, &key, t0).await;
    let qr = |step: u64| Pass::prove(&ticket, compound, step, &device).encode();
    let s0 = step_of(t0);
    let (server, addr) = start(&store, &key, "127.0.0.1:0").await;

    let cfg = BoxConfig {
        server: format!("http://{addr}"),
        token: GATE_TOKEN.into(),
        compound,
        dir: tmp.0.join("box"),
        max_offline: 3600,
        issuer_key: None,
    };
    let mut gate = GateBox::open(cfg.clone(), t0).unwrap();
    // Never synced: it refuses everything.
    let a = gate.scan(&qr(s0), Direction::Entry, t0).unwrap();
    assert_eq!(a.reason, Some("offline_too_long"), "{a:?}");
    // Online: the first sync (trust on first use).
    assert_eq!(gate.sync(t0).await.unwrap(), 0);
    assert_eq!(gate.last_sync(), Some(t0));

    // The network is cut: the server is gone.
    server.stop().await;
    assert!(gate.sync(t0 + 5).await.is_err());
    assert_eq!(gate.last_sync(), Some(t0), "a failed sync changes nothing");
    // Scans are still checked locally: entry passes, once; exit passes; entry again.
    let entry = gate.scan(&qr(s0 + 1), Direction::Entry, t0 + 30).unwrap();
    assert_eq!(entry.outcome, "pass", "{entry:?}");
    let again = gate.scan(&qr(s0 + 1), Direction::Entry, t0 + 30).unwrap();
    assert_eq!(again.reason, Some("replayed"));
    let exit = gate.scan(&qr(s0 + 2), Direction::Exit, t0 + 60).unwrap();
    assert_eq!(exit.outcome, "pass", "{exit:?}");
    let back_in = gate.scan(&qr(s0 + 3), Direction::Entry, t0 + 90).unwrap();
    assert_eq!(back_in.outcome, "pass", "{back_in:?}");
    // A forged pass (another device key) is refused offline too.
    let forged = Pass::prove(&ticket, compound, s0 + 3, &SigningKey::from_bytes(&[8; 32]));
    let forged = gate
        .scan(&forged.encode(), Direction::Exit, t0 + 90)
        .unwrap();
    assert_eq!(forged.reason, Some("bad_device_signature"));
    assert_eq!(gate.pending().len(), 3);

    // The box restarts, still offline: the queue, the replay records and presence
    // are read back from its folder.
    let box_key = gate.public_key();
    drop(gate);
    let mut gate = GateBox::open(cfg.clone(), t0 + 90).unwrap();
    assert_eq!(gate.public_key(), box_key);
    assert_eq!(gate.pending().len(), 3);
    let replay = gate.scan(&qr(s0 + 3), Direction::Entry, t0 + 90).unwrap();
    assert_eq!(replay.reason, Some("replayed"), "replay records survive");
    let inside = gate.scan(&qr(s0 + 4), Direction::Entry, t0 + 120).unwrap();
    assert_eq!(inside.reason, Some("already_inside"), "presence survives");

    // The server comes back on the same database file and port.
    store.close().await;
    let store = Store::open(&db).await.unwrap();
    let (server, addr2) = start(&store, &key, &addr).await;
    assert_eq!(addr2, addr);
    assert_eq!(
        gate.sync(t0 + 150).await.unwrap(),
        3,
        "the queue is uploaded"
    );
    assert!(gate.pending().is_empty());
    assert_eq!(gate.last_sync(), Some(t0 + 150));
    let log = store.gate_events(compound as i64, 100).await.unwrap();
    let passes: Vec<_> = log.iter().filter(|e| e.outcome == "pass").collect();
    assert_eq!(passes.len(), 3, "{log:?}");
    let directions: Vec<&str> = passes.iter().rev().map(|e| e.direction.as_str()).collect();
    assert_eq!(directions, ["entry", "exit", "entry"]);
    // An upload is idempotent on the event id: sending the journal again adds nothing.
    let journal = gate.journal.clone();
    let results = post_events(&gate.http, &cfg, &box_key, &journal)
        .await
        .unwrap();
    assert!(results.iter().all(|(_, o)| o == "duplicate"), "{results:?}");
    assert_eq!(
        store.gate_events(compound as i64, 100).await.unwrap().len(),
        log.len()
    );
    // A tampered event is refused and not stored.
    let mut bad = journal[0].clone();
    bad.id = format!("{}:{}", &bad.id[..64], s0 + 9);
    let results = post_events(&gate.http, &cfg, &box_key, &[bad])
        .await
        .unwrap();
    assert_eq!(results[0].1, "rejected");
    assert_eq!(
        store.gate_events(compound as i64, 100).await.unwrap().len(),
        log.len()
    );
    // The server knows the rider is inside: the box's last entry reached presence.
    let t = lianxin_pass::TrustList {
        keys: gate.trust.keys.clone(),
    };
    let claims = t.verify(&ticket, t0).unwrap().claims;
    let facts = store
        .ticket_facts(&claims.pseudonym, &claims.device_key)
        .await
        .unwrap();
    assert!(facts.inside);

    // A list that does not verify is refused, and the box keeps its own.
    let (trust, revs) = fetch_lists(&gate.http, &cfg).await.unwrap();
    let mut forged = trust.clone();
    forged.payload = forged.payload.replace("\"keys\"", "\"keys\" ");
    assert!(gate.apply_sync(&forged, &revs, t0 + 160).is_err());
    assert_eq!(gate.last_sync(), Some(t0 + 150));
    // The issuer key rotates: the old key co-signs the list that brings the new one,
    // so the box follows, and the old ticket still passes during the overlap.
    store
        .rotate_issuer_key(&Actor::system("test"), &key, unix_now(), 3 * 3600)
        .await
        .unwrap();
    assert_eq!(gate.sync(t0 + 170).await.unwrap(), 0);
    assert_eq!(gate.trust.keys.len(), 2);
    let out = gate
        .scan(&qr(step_of(t0 + 180)), Direction::Exit, t0 + 180)
        .unwrap();
    assert_eq!(out.outcome, "pass", "{out:?}");
    assert_eq!(gate.sync(t0 + 190).await.unwrap(), 1);
    let restarted = GateBox::open(cfg.clone(), t0 + 190).unwrap();
    assert_eq!(restarted.trust.keys.len(), 2);
    drop(restarted);

    // Past --max-offline since the last sync, everything is refused.
    server.stop().await;
    let late = t0 + 190 + 3601;
    let a = gate
        .scan(&qr(step_of(late)), Direction::Exit, late)
        .unwrap();
    assert_eq!(a.reason, Some("offline_too_long"), "{a:?}");
    assert!(a.message.contains("3600"));
    // Just inside the limit it would still have checked the pass.
    let ok = gate
        .scan(&qr(step_of(late - 1)), Direction::Entry, late - 1)
        .unwrap();
    assert_eq!(ok.outcome, "pass", "{ok:?}");
    store.close().await;
}

#[test]
fn a_torn_journal_line_is_skipped_and_the_next_event_kept() {
    let tmp = TempDir::new("lianxin-gate-box-torn").unwrap();
    let cfg = BoxConfig {
        server: "http://127.0.0.1:9".into(),
        token: GATE_TOKEN.into(),
        compound: 5,
        dir: tmp.0.clone(),
        max_offline: 3600,
        issuer_key: None,
    };
    let event = |n: u64| Event {
        id: format!("{}:{n}", "ab".repeat(32)),
        compound: 5,
        pseudonym: "cd".repeat(16),
        direction: "entry".into(),
        at: n,
        signature: "00".repeat(64),
    };
    let first = serde_json::to_string(&event(1)).unwrap();
    std::fs::write(
        tmp.0.join("journal.jsonl"),
        format!("{first}\n{{\"id\":\"ab"),
    )
    .unwrap();
    let mut b = GateBox::open(cfg.clone(), 100).unwrap();
    assert_eq!(b.pending(), vec![event(1)]);
    append_durably(
        &mut b.journal_file,
        &serde_json::to_string(&event(2)).unwrap(),
    )
    .unwrap();
    drop(b);
    let b = GateBox::open(cfg, 100).unwrap();
    assert_eq!(b.pending(), vec![event(1), event(2)]);
    assert!(b.ledger.inside.contains(&[0xcd; 16]));
}
