//! The demo's rider gate pass (新通码) at 开元社区: two platforms, the `rider` login
//! registered as a 美团 rider, the `gate` login bound to the compound's north rider
//! gate (a tablet running `/gate/scan`), a south gate with a token for a `lianxin
//! gate` box, and a week of synthetic scans so that `/gate/log` has something to
//! show. All of it is invented and labelled 示例.
//!
//! The synthetic week goes through the real path: orders declared, tickets issued at
//! back-dated times, scans logged with their pseudonyms. On every start the `rider`
//! login gets an open order for the next hours, so `/pass` shows a live QR.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, DurationRound, Utc};
use ed25519_dalek::SigningKey;
use lianxin_domain::person::IdCardNumber;
use lianxin_domain::pii::{random_token, PiiKey};
use lianxin_pass::{Deny, Direction};
use lianxin_server::AppState;
use lianxin_store::audit::Actor;
use lianxin_store::gate::{NewOrder, NewRider, Scan};
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

const LOADED_MARKER: &str = "demo_gate_loaded";
const PLATFORM_TOKEN: &str = "demo_gate_platform_token";
const BOX_TOKEN: &str = "demo_gate_box_token";
const COMPOUND: &str = "150207.BYXL.KY";
const BUILDINGS: [&str; 4] = [
    "150207.BYXL.KY.G01.B01",
    "150207.BYXL.KY.G01.B02",
    "150207.BYXL.KY.G02.B03",
    "150207.BYXL.KY.G02.B04",
];
/// Days of synthetic scans before today.
const HISTORY_DAYS: i64 = 7;

/// What the start-up banner prints for the gate pass.
pub struct GateDemo {
    pub platform_token: String,
    pub box_token: String,
    pub compound_id: i64,
}

fn id_card(region: &str, n: u32) -> String {
    let first17 = format!("{region}1990{:02}{:02}{:03}", 1 + n % 12, 1 + n % 28, n);
    let check = IdCardNumber::check_char(&first17).expect("17 digits");
    format!("{first17}{check}")
}

fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Loads the gate pass's demo world once, and gives the `rider` login a current order
/// on every start.
pub async fn ensure_loaded(state: &AppState) -> Result<GateDemo> {
    let store = &state.store;
    if store.meta_get(LOADED_MARKER).await?.is_none() {
        load(state).await?;
    }
    refresh_current_order(state).await?;
    Ok(GateDemo {
        platform_token: store
            .meta_get(PLATFORM_TOKEN)
            .await?
            .context("the demo platform token is missing")?,
        box_token: store
            .meta_get(BOX_TOKEN)
            .await?
            .context("the demo gate box token is missing")?,
        compound_id: store
            .place_by_code(COMPOUND)
            .await?
            .context("the demo compound is missing")?
            .id,
    })
}

async fn account_id(store: &Store, username: &str) -> Result<i64> {
    Ok(store
        .account_by_username(username)
        .await?
        .with_context(|| format!("the demo login {username} is missing"))?
        .0
        .id)
}

async fn load(state: &AppState) -> Result<()> {
    let store = &state.store;
    let actor = Actor::system("demo");
    let pii = &state.pii;
    let platform_token = random_token("lxp_", 24);
    let meituan = store
        .create_platform(
            &actor,
            "meituan",
            "美团外卖（示例）",
            &PiiKey::token_hash(&platform_token),
        )
        .await?;
    let eleme = store
        .create_platform(
            &actor,
            "eleme",
            "饿了么（示例）",
            &PiiKey::token_hash(&random_token("lxp_", 24)),
        )
        .await?;
    let region = "150207";
    store
        .register_rider(
            &actor,
            pii,
            &NewRider {
                platform_code: meituan.code.clone(),
                name: "李明".into(),
                id_card: id_card(region, 1),
                account_id: Some(account_id(store, "rider").await?),
                new_account: None,
                region: region.into(),
            },
            "admin:demo",
        )
        .await?;
    store
        .create_gate_for_account(
            &actor,
            COMPOUND,
            "开元社区北门骑手通道（示例）",
            account_id(store, "gate").await?,
        )
        .await?;
    let box_token = random_token("lxg_", 24);
    let south = store
        .create_gate(
            &actor,
            COMPOUND,
            "开元社区南门骑手通道（示例）",
            &PiiKey::token_hash(&box_token),
        )
        .await?;
    history(
        state,
        &[(meituan.id, "meituan"), (eleme.id, "eleme")],
        &south,
    )
    .await?;
    store.meta_set(PLATFORM_TOKEN, &platform_token).await?;
    store.meta_set(BOX_TOKEN, &box_token).await?;
    store
        .meta_set(LOADED_MARKER, &lianxin_store::now_text())
        .await?;
    Ok(())
}

/// A week of scans at the south gate: riders of both platforms delivering at the
/// busy hours, each entering and leaving, and a few refusals (a screenshot replayed,
/// a code from a phone whose clock is off, a second entry).
async fn history(
    state: &AppState,
    platforms: &[(i64, &str)],
    gate: &lianxin_store::gate::GateDevice,
) -> Result<()> {
    let store = &state.store;
    let actor = Actor::system("demo");
    let mut rng = StdRng::seed_from_u64(20261128);
    let mut riders = Vec::new();
    for (i, (_, code)) in platforms.iter().cycle().take(8).enumerate() {
        let rider = store
            .register_rider(
                &actor,
                &state.pii,
                &NewRider {
                    platform_code: code.to_string(),
                    name: ["张", "王", "刘", "陈", "杨", "赵", "黄", "周"][i].to_string() + "师傅",
                    id_card: id_card("150207", 100 + i as u32),
                    account_id: None,
                    new_account: None,
                    region: "150207".into(),
                },
                "admin:demo",
            )
            .await?;
        let key = SigningKey::from_bytes(&rng.gen());
        store
            .add_device(&actor, rider.id, key.verifying_key().as_bytes())
            .await?;
        riders.push((rider.id, platforms[i % platforms.len()].0));
    }
    let today = Utc::now().duration_trunc(Duration::days(1))?;
    // Lunch and dinner peaks (Shanghai 11–13 and 17–20 are 03–05 and 09–12 UTC).
    let peak_hours_utc = [3, 3, 4, 4, 4, 5, 9, 10, 10, 11, 11, 12, 1, 7];
    for day in 1..=HISTORY_DAYS {
        let date = today - Duration::days(day);
        let mut arrivals: Vec<DateTime<Utc>> = (0..rng.gen_range(9..15))
            .map(|_| {
                let hour = peak_hours_utc[rng.gen_range(0..peak_hours_utc.len())];
                date + Duration::hours(hour) + Duration::seconds(rng.gen_range(0..3600i64))
            })
            .collect();
        arrivals.sort();
        // A rider's orders never overlap, so each arrival is the rider's current order.
        let mut busy_until = vec![DateTime::<Utc>::MIN_UTC; riders.len()];
        for (n, arrive) in arrivals.into_iter().enumerate() {
            let from = arrive - Duration::minutes(20);
            let first = rng.gen_range(0..riders.len());
            let Some(r) = (0..riders.len())
                .map(|k| (first + k) % riders.len())
                .find(|&r| busy_until[r] < from)
            else {
                continue;
            };
            busy_until[r] = arrive + Duration::minutes(40);
            let (rider_id, platform_id) = riders[r];
            let (order, _) = store
                .declare_order(
                    &actor,
                    platform_id,
                    &NewOrder {
                        platform_order_id: format!("DEMO-{}-{n}", date.format("%Y%m%d")),
                        rider_id,
                        compound_code: COMPOUND.into(),
                        building_code: Some(BUILDINGS[rng.gen_range(0..BUILDINGS.len())].into()),
                        window_from: time_text(from),
                        window_until: time_text(busy_until[r]),
                    },
                )
                .await?;
            let ticket = store
                .current_ticket(&state.pii, rider_id, arrive.timestamp() as u64)
                .await?;
            anyhow::ensure!(
                ticket.order_id == order.id,
                "a demo ticket is for another order"
            );
            let pseudonym: [u8; 16] = hex::decode(&ticket.pseudonym)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("a pseudonym is 16 bytes"))?;
            let digest: [u8; 32] = Sha256::digest(&ticket.bytes).into();
            let step = arrive.timestamp() as u64 / lianxin_pass::STEP_SECONDS;
            let scan = |direction, spent: Option<u64>, outcome, took_ms| Scan {
                gate_id: gate.id,
                compound_id: gate.compound_id,
                region: gate.region.clone(),
                direction,
                pseudonym: Some(pseudonym),
                spent: spent.map(|s| (digest, s)),
                outcome,
                took_ms: Some(took_ms),
            };
            let at = lianxin_store::demands::ts;
            let mut entered = arrive;
            // About one rider in eight first shows a stale code and refreshes it.
            if rng.gen_bool(0.12) {
                let _refused = store
                    .record_scan_at(
                        scan(Direction::Entry, None, Err(Deny::WrongTime), 3),
                        at(arrive),
                    )
                    .await?;
                entered = arrive + Duration::seconds(rng.gen_range(8..40));
            }
            let step_in = entered.timestamp() as u64 / lianxin_pass::STEP_SECONDS;
            let entry = store
                .record_scan_at(
                    scan(Direction::Entry, Some(step_in), Ok(()), rng.gen_range(2..9)),
                    at(entered),
                )
                .await?;
            let left = entered + Duration::seconds(rng.gen_range(150..600));
            let step_out = left.timestamp() as u64 / lianxin_pass::STEP_SECONDS;
            let exit = store
                .record_scan_at(
                    scan(Direction::Exit, Some(step_out), Ok(()), rng.gen_range(2..9)),
                    at(left),
                )
                .await?;
            anyhow::ensure!(
                entry.is_ok() && exit.is_ok(),
                "a demo rider's entry or exit was refused: {entry:?} {exit:?}"
            );
            if rng.gen_bool(0.08) {
                // The entry's screenshot, shown again by someone else.
                let _refused = store
                    .record_scan_at(
                        scan(Direction::Entry, Some(step), Err(Deny::Replayed), 3),
                        at(left + Duration::minutes(2)),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Gives the `rider` login an open order at 开元社区 for the next twelve hours. The
/// order id is the hour, so restarting within the hour declares the same order again
/// (idempotent) and a later start declares a new one.
async fn refresh_current_order(state: &AppState) -> Result<()> {
    let store = &state.store;
    let Some(rider) = store
        .rider_of_account(account_id(store, "rider").await?)
        .await?
    else {
        return Ok(());
    };
    let platform = store
        .platforms()
        .await?
        .into_iter()
        .find(|p| p.code == rider.platform)
        .context("the demo rider's platform is missing")?;
    let hour = state.desk.now().duration_trunc(Duration::hours(1))?;
    store
        .declare_order(
            &Actor::system("demo"),
            platform.id,
            &NewOrder {
                platform_order_id: format!("DEMO-RIDER-{}", hour.format("%Y%m%d%H")),
                rider_id: rider.id,
                compound_code: COMPOUND.into(),
                building_code: Some(BUILDINGS[0].into()),
                window_from: time_text(hour - Duration::minutes(10)),
                window_until: time_text(hour + Duration::hours(12)),
            },
        )
        .await?;
    Ok(())
}
