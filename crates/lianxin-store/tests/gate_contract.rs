//! The storage contract of the rider gate pass: idempotent order declaration, ticket
//! issuing, the replay guard across two stores, the revocation list and issuer key
//! rotation. Every test runs on SQLite, and on PostgreSQL when
//! `LIANXIN_TEST_DATABASE_URL` is set.

use ed25519_dalek::SigningKey;
use lianxin_domain::draft::*;
use lianxin_domain::person::IdCardNumber;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::DataScope;
use lianxin_pass::{Deny, Direction, Gate, MemoryLedger, Pass};
use lianxin_store::audit::{Actor, Verification};
use lianxin_store::gate::{NewOrder, NewRider, RiderStatus, Scan};
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
        orders_are_declared_idempotently,
        tickets_are_issued_for_the_current_order,
        the_replay_guard_holds_across_stores,
        presence_orders_entries_and_exits,
        revocations_list_riders_and_devices,
        rotated_keys_overlap_then_retire,
    );
}

const NOW: u64 = 1_780_000_000;

fn admin() -> Actor {
    Actor::system("test")
}

fn key() -> PiiKey {
    PiiKey::from_master(&[3; 32])
}

/// A valid ID-card number (the check character computed).
fn id_card(n: u32) -> String {
    let first17 = format!("15020719900101{n:03}");
    format!("{first17}{}", IdCardNumber::check_char(&first17).unwrap())
}

fn rfc3339(unix: u64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

struct World {
    platform: i64,
    rider: i64,
    device: SigningKey,
    compound: i64,
}

async fn world(store: &Store) -> World {
    let all = DataScope::everything();
    for (code, level, parent) in [
        ("150000", "region", None),
        ("150200", "city", Some("150000")),
        ("150207", "county", Some("150200")),
        ("150207.BY", "town", Some("150207")),
        ("150207.BY.KY", "village", Some("150207.BY")),
        ("150207.BY.KY.G1", "grid", Some("150207.BY.KY")),
        ("150207.BY.KY.G1.B1", "building", Some("150207.BY.KY.G1")),
        ("150207.BY.HX", "village", Some("150207.BY")),
    ] {
        let d = PlaceDraft::parse(&RawPlace {
            code: code.into(),
            name: code.into(),
            level: level.into(),
            parent_code: parent.map(Into::into),
            ..Default::default()
        })
        .unwrap();
        store.create_place(&admin(), &all, &d).await.unwrap();
    }
    let platform = store
        .create_platform(&admin(), "meituan", "美团", "hash-of-token")
        .await
        .unwrap();
    let rider = store
        .register_rider(
            &admin(),
            &key(),
            &NewRider {
                platform_code: "meituan".into(),
                name: "王小明".into(),
                id_card: id_card(1),
                account_id: None,
                new_account: None,
                region: "150207".into(),
            },
            "admin:1",
        )
        .await
        .unwrap();
    assert_eq!(rider.name_masked, "王**");
    let device = SigningKey::from_bytes(&[5; 32]);
    store
        .add_device(&admin(), rider.id, &device.verifying_key().to_bytes())
        .await
        .unwrap();
    let compound = store
        .place_by_code("150207.BY.KY")
        .await
        .unwrap()
        .unwrap()
        .id;
    World {
        platform: platform.id,
        rider: rider.id,
        device,
        compound,
    }
}

fn order(w: &World, id: &str) -> NewOrder {
    NewOrder {
        platform_order_id: id.into(),
        rider_id: w.rider,
        compound_code: "150207.BY.KY".into(),
        building_code: Some("150207.BY.KY.G1.B1".into()),
        window_from: rfc3339(NOW - 600),
        window_until: rfc3339(NOW + 3 * 3600),
    }
}

async fn orders_are_declared_idempotently(t: &TestStore, _: Engine) {
    let store = &t.store;
    let w = world(store).await;
    let (first, new) = store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    assert!(new);
    let (again, new) = store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(first, again);
    let mut changed = order(&w, "MT-1");
    changed.window_until = rfc3339(NOW + 3600);
    assert!(matches!(
        store.declare_order(&admin(), w.platform, &changed).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut outside = order(&w, "MT-2");
    outside.building_code = Some("150207.BY.HX".into());
    assert!(matches!(
        store.declare_order(&admin(), w.platform, &outside).await,
        Err(StoreError::Invalid(e)) if e.field == "building"
    ));
    let mut backwards = order(&w, "MT-3");
    backwards.window_until = backwards.window_from.clone();
    assert!(matches!(
        store.declare_order(&admin(), w.platform, &backwards).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { .. }
    ));
}

async fn tickets_are_issued_for_the_current_order(t: &TestStore, _: Engine) {
    let store = &t.store;
    let w = world(store).await;
    assert!(matches!(
        store.current_ticket(&key(), w.rider, NOW).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    let ticket = store.current_ticket(&key(), w.rider, NOW).await.unwrap();
    assert_eq!(ticket.not_before, NOW - 600);
    assert_eq!(ticket.not_after, NOW + 2 * 3600, "clipped to two hours");
    // Asked again, the same ticket; the gate's trust list verifies it.
    let again = store
        .current_ticket(&key(), w.rider, NOW + 60)
        .await
        .unwrap();
    assert_eq!(again, ticket);
    let trust = store.trust_list(NOW).await.unwrap();
    let checked = trust.verify(&ticket.bytes, NOW).unwrap();
    assert_eq!(checked.claims.compound, w.compound as u64);
    assert_eq!(
        checked.claims.device_key,
        w.device.verifying_key().to_bytes()
    );
    // A suspended rider gets none.
    store
        .set_rider_status(&admin(), w.rider, RiderStatus::Suspended)
        .await
        .unwrap();
    assert!(matches!(
        store.current_ticket(&key(), w.rider, NOW).await,
        Err(StoreError::Conflict { .. })
    ));
}

fn scan_of(gate: i64, compound: i64, admit: &lianxin_pass::Admit) -> Scan {
    Scan {
        gate_id: gate,
        compound_id: compound,
        region: "150207".into(),
        direction: admit.direction,
        pseudonym: Some(admit.ticket.claims.pseudonym),
        spent: Some((admit.ticket.digest, admit.step)),
        outcome: Ok(()),
        took_ms: Some(1),
    }
}

async fn the_replay_guard_holds_across_stores(t: &TestStore, _: Engine) {
    let store = &t.store;
    let w = world(store).await;
    store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    let gate = store
        .create_gate(&admin(), "150207.BY.KY", "北门", "gate-token-hash")
        .await
        .unwrap();
    let ticket = store.current_ticket(&key(), w.rider, NOW).await.unwrap();
    let qr = Pass::prove(
        &ticket.bytes,
        ticket.compound_id as u64,
        NOW / 30,
        &w.device,
    )
    .encode();
    let trust = store.trust_list(NOW).await.unwrap();
    let g = Gate {
        compound: w.compound as u64,
        trust: &trust,
    };
    // Two servers, each with its own (empty) memory, on one database.
    let other = Store::open(store.url()).await.unwrap();
    let a = g
        .check(&qr, NOW, Direction::Entry, &mut MemoryLedger::default())
        .unwrap();
    let b = g
        .check(&qr, NOW, Direction::Entry, &mut MemoryLedger::default())
        .unwrap();
    let (ra, rb) = tokio::join!(
        store.record_scan(scan_of(gate.id, w.compound, &a)),
        other.record_scan(scan_of(gate.id, w.compound, &b)),
    );
    let mut outcomes = [ra.unwrap(), rb.unwrap()];
    outcomes.sort_by_key(|o| o.is_err());
    assert_eq!(outcomes, [Ok(()), Err(Deny::Replayed)]);
    other.close().await;
    let events = store.gate_events(w.compound, 10).await.unwrap();
    let mut codes: Vec<_> = events.iter().map(|e| e.outcome.as_str()).collect();
    codes.sort();
    assert_eq!(codes, ["pass", "replayed"]);
}

async fn presence_orders_entries_and_exits(t: &TestStore, _: Engine) {
    let store = &t.store;
    let w = world(store).await;
    store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    let gate = store
        .create_gate(&admin(), "150207.BY.KY", "北门", "gate-token-hash")
        .await
        .unwrap();
    let ticket = store.current_ticket(&key(), w.rider, NOW).await.unwrap();
    let trust = store.trust_list(NOW).await.unwrap();
    let g = Gate {
        compound: w.compound as u64,
        trust: &trust,
    };
    let p: [u8; 16] = hex::decode(&ticket.pseudonym).unwrap().try_into().unwrap();
    let mut step = NOW / 30;
    // Each scan passes in memory (the ledger says what the direction needs); the
    // store's presence is what decides.
    let mut scan = |direction: Direction| {
        step += 1;
        let now = step * 30;
        let qr = Pass::prove(&ticket.bytes, ticket.compound_id as u64, step, &w.device).encode();
        let mut ledger = MemoryLedger::default();
        if direction == Direction::Exit {
            ledger.inside.insert(p);
        }
        let admit = g.check(&qr, now, direction, &mut ledger).unwrap();
        store.record_scan(scan_of(gate.id, w.compound, &admit))
    };
    assert_eq!(scan(Direction::Exit).await.unwrap(), Err(Deny::NotInside));
    assert_eq!(scan(Direction::Entry).await.unwrap(), Ok(()));
    assert_eq!(
        scan(Direction::Entry).await.unwrap(),
        Err(Deny::AlreadyInside)
    );
    let facts = store
        .ticket_facts(&p, &w.device.verifying_key().to_bytes())
        .await
        .unwrap();
    assert!(facts.inside && !facts.rider_revoked && !facts.device_revoked);
    assert_eq!(scan(Direction::Exit).await.unwrap(), Ok(()));
    let facts = store
        .ticket_facts(&p, &w.device.verifying_key().to_bytes())
        .await
        .unwrap();
    assert!(!facts.inside);
    // An unknown ticket counts as revoked.
    let unknown = store.ticket_facts(&[0; 16], &[0; 32]).await.unwrap();
    assert!(unknown.rider_revoked && unknown.device_revoked);
}

async fn revocations_list_riders_and_devices(t: &TestStore, _: Engine) {
    let store = &t.store;
    let w = world(store).await;
    store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    let ticket = store.current_ticket(&key(), w.rider, NOW).await.unwrap();
    let empty = store.revocations(NOW).await.unwrap();
    assert!(empty.pseudonyms.is_empty() && empty.device_keys.is_empty());
    store
        .set_rider_status(&admin(), w.rider, RiderStatus::Revoked)
        .await
        .unwrap();
    let device = store.devices_of(w.rider).await.unwrap().remove(0);
    store.revoke_device(&admin(), device.id).await.unwrap();
    let list = store.revocations(NOW).await.unwrap();
    assert_eq!(list.pseudonyms, vec![ticket.pseudonym.clone()]);
    assert_eq!(list.device_keys, vec![device.public_key.clone()]);
    // Once the ticket has expired neither needs listing: a device without a live
    // ticket opens nothing.
    let later = store.revocations(ticket.not_after).await.unwrap();
    assert!(later.pseudonyms.is_empty() && later.device_keys.is_empty());
    // A new device replaces (revokes) the old one.
    store
        .set_rider_status(&admin(), w.rider, RiderStatus::Active)
        .await
        .unwrap();
    let phone = SigningKey::from_bytes(&[6; 32]).verifying_key().to_bytes();
    store.add_device(&admin(), w.rider, &phone).await.unwrap();
    let devices = store.devices_of(w.rider).await.unwrap();
    assert_eq!(devices.iter().filter(|d| d.active).count(), 1);
    assert_eq!(devices.last().unwrap().public_key, hex::encode(phone));
}

async fn rotated_keys_overlap_then_retire(t: &TestStore, _: Engine) {
    let store = &t.store;
    let w = world(store).await;
    store
        .declare_order(&admin(), w.platform, &order(&w, "MT-1"))
        .await
        .unwrap();
    let old = store.current_ticket(&key(), w.rider, NOW).await.unwrap();
    let kid = store
        .rotate_issuer_key(&admin(), &key(), NOW, 600)
        .await
        .unwrap();
    assert_ne!(kid, old.kid);
    let keys = store.trusted_issuer_keys(NOW).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys.iter().filter(|k| k.accepted_until.is_none()).count(),
        1
    );
    // During the overlap the old ticket passes; after it, it is refused.
    let trust = store.trust_list(NOW + 599).await.unwrap();
    assert!(trust.verify(&old.bytes, NOW + 599).is_ok());
    let trust = store.trust_list(NOW + 600).await.unwrap();
    assert_eq!(trust.keys.len(), 1);
    assert_eq!(
        trust.verify(&old.bytes, NOW + 600).unwrap_err(),
        Deny::UnknownIssuer
    );
    // The rider's phone gets a ticket under the new key.
    let fresh = store.current_ticket(&key(), w.rider, NOW).await.unwrap();
    assert_eq!(fresh.kid, kid);
    assert_ne!(fresh.pseudonym, old.pseudonym);
    // The private key is unreadable without the master key.
    let other = PiiKey::from_master(&[4; 32]);
    assert!(matches!(
        store.issuer(&other).await,
        Err(StoreError::Config(_))
    ));
}
