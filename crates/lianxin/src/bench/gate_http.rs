//! `bench gate`, HTTP part: scans through `POST /api/v1/gate/scan` on the real
//! server (`lianxin_server::router` on a socket, a fresh SQLite database, the
//! group-commit writer), with 64 gates scanning at once.
//!
//! The world is one compound with 64 registered gates, each with its own token, and
//! riders with their devices and orders, all made through the store beforehand (not
//! measured). Each rider gets its first ticket from the store (`current_ticket`); the
//! further tickets the run needs — every code may be scanned once, and a ticket has
//! only so many steps valid at a time — are signed with the store's own issuer key
//! and written to `gate_tickets` with the same columns the store writes. Before each
//! run every ticket gets two codes proved with the rider's device key
//! (`lianxin_pass::Pass::prove`): an entry at the current step and an exit at the
//! next, which the gate scans in that order, so every scan should pass.
//!
//! Each gate is a client task holding one keep-alive HTTP/1.1 connection and
//! posting its next code as soon as the last is answered. A scan counts when it is
//! answered 200 with `outcome: pass`; anything else is a failure. At the end the
//! server is stopped, the store closed, and the database opened afresh: the number
//! of `pass` rows in `gate_events` must equal the number of accepted scans.

use super::intake::{connect, contains, percentile_ms};
use super::world;
use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use lianxin_domain::person::IdCardNumber;
use lianxin_domain::pii::{random_token, PiiKey};
use lianxin_pass::{step_of, Claims, Pass};
use lianxin_server::{router, AppState, Settings};
use lianxin_store::audit::Actor;
use lianxin_store::gate::{NewOrder, NewRider};
use lianxin_store::testing::TempDir;
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The route under test.
const PATH: &str = "/api/v1/gate/scan";
/// Gates scanning at once, one client each.
pub const GATES: usize = 64;
/// Riders per gate (each with a device and an order).
const RIDERS_PER_GATE: usize = 2;
/// Codes are prepared for this many scans per second; a client that runs out stops
/// and the run is refused.
const CAPACITY_PER_SECOND: f64 = 14_000.0;

/// How long and how often the HTTP load runs.
pub struct Plan {
    pub runs: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// One measured run of every gate.
#[derive(Debug, Default)]
pub struct HttpRun {
    /// Scans accepted per second within the measured window.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Scans accepted in the window.
    pub accepted: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
}

/// Everything the HTTP part measured.
pub struct HttpResult {
    pub runs: Vec<HttpRun>,
    /// One more run, open loop: every gate sends at a fixed pace adding up to half
    /// the closed-loop rate, latency counted from when each scan was due (so a slow
    /// answer cannot hide the scans queued behind it).
    pub paced: Option<HttpRun>,
    /// Every scan answered `pass`, in or out of the measured windows.
    pub accepted_total: u64,
    /// `pass` rows in `gate_events`, read from the database afterwards.
    pub logged: u64,
    pub tickets: usize,
}

fn id_card(n: usize) -> String {
    let first17 = format!(
        "1502071990{:02}{:02}{:03}",
        1 + n / 28 % 12,
        1 + n % 28,
        n % 1000
    );
    let check = IdCardNumber::check_char(&first17).unwrap_or('X');
    format!("{first17}{check}")
}

fn time_text(unix: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(unix).unwrap_or(0), 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A ticket a gate's client scans: its bytes and the index of its rider's device.
struct Ticket {
    bytes: Vec<u8>,
    device: usize,
}

/// The prepared world: per gate its token and its tickets; the devices' keys.
struct World {
    tokens: Vec<String>,
    tickets: Vec<Vec<Ticket>>,
    devices: Vec<SigningKey>,
    compound: u64,
}

async fn prepare(store: &Store, db: &str, pii: &PiiKey, per_gate: usize) -> Result<World> {
    let actor = Actor::system("bench");
    let places = world::seed(store).await?;
    let compound = places.communities.first().context("a community")?.clone();
    let platform = store
        .create_platform(
            &actor,
            "meituan",
            "美团",
            &PiiKey::token_hash(&random_token("lxt_", 32)),
        )
        .await?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(5);
    let mut tokens = Vec::with_capacity(GATES);
    for g in 0..GATES {
        let token = random_token("lxt_", 32);
        store
            .create_gate(
                &actor,
                &compound.code,
                &format!("门{g}"),
                &PiiKey::token_hash(&token),
            )
            .await?;
        tokens.push(token);
    }
    // Riders, devices, orders and each rider's first ticket, through the store.
    struct RiderRow {
        id: i64,
        device_id: i64,
        order_id: i64,
        order_hash: [u8; 16],
    }
    let mut devices = Vec::new();
    let mut riders = Vec::new();
    let mut tickets: Vec<Vec<Ticket>> = (0..GATES).map(|_| Vec::new()).collect();
    for i in 0..GATES * RIDERS_PER_GATE {
        let rider = store
            .register_rider(
                &actor,
                pii,
                &NewRider {
                    platform_code: "meituan".into(),
                    name: "王小明".into(),
                    id_card: id_card(i),
                    account_id: None,
                    new_account: None,
                    region: "150207".into(),
                },
                "admin:bench",
            )
            .await?;
        let key = SigningKey::generate(&mut rng);
        let device = store
            .add_device(&actor, rider.id, &key.verifying_key().to_bytes())
            .await?;
        let order_id = format!("MT-{i}");
        let (order, _) = store
            .declare_order(
                &actor,
                platform.id,
                &NewOrder {
                    platform_order_id: order_id.clone(),
                    rider_id: rider.id,
                    compound_code: compound.code.clone(),
                    building_code: None,
                    window_from: time_text(now - 60),
                    window_until: time_text(now + 20 * 3600),
                },
            )
            .await?;
        let first = store.current_ticket(pii, rider.id, now).await?;
        tickets[i % GATES].push(Ticket {
            bytes: first.bytes,
            device: devices.len(),
        });
        riders.push(RiderRow {
            id: rider.id,
            device_id: device.id,
            order_id: order.id,
            order_hash: lianxin_store::gate::order_hash(pii, "meituan", &order_id),
        });
        devices.push(key);
    }
    // The further tickets, signed with the store's issuer key, in one transaction.
    let issuer = store.issuer(pii).await?;
    let kid = hex::encode(issuer.kid.as_bytes());
    let mut conn = sqlx::SqliteConnection::connect(db).await?;
    let mut tx = conn.begin().await?;
    let issued_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for (g, own) in tickets.iter_mut().enumerate() {
        while own.len() < per_gate {
            let r = g + GATES * (own.len() % RIDERS_PER_GATE);
            let rider = &riders[r];
            let claims = Claims {
                pseudonym: rng.gen(),
                order_hash: rider.order_hash,
                compound: u64::try_from(compound.id).unwrap_or(0),
                not_before: now - 60,
                not_after: now + 2 * 3600,
                device_key: devices[r].verifying_key().to_bytes(),
            };
            let bytes = issuer.issue(&claims);
            let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
            sqlx::query(
                "INSERT INTO gate_tickets (pseudonym, digest, order_id, rider_id, device_id, compound_id, \
                 not_before, not_after, kid, bytes, region, issued_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(hex::encode(claims.pseudonym))
            .bind(hex::encode(digest))
            .bind(rider.order_id)
            .bind(rider.id)
            .bind(rider.device_id)
            .bind(compound.id)
            .bind(i64::try_from(claims.not_before).unwrap_or(0))
            .bind(i64::try_from(claims.not_after).unwrap_or(0))
            .bind(&kid)
            .bind(hex::encode(&bytes))
            .bind("150207")
            .bind(&issued_at)
            .execute(&mut *tx)
            .await?;
            own.push(Ticket { bytes, device: r });
        }
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(World {
        tokens,
        tickets,
        devices,
        compound: u64::try_from(compound.id).unwrap_or(0),
    })
}

/// One gate: a keep-alive connection, its token, and the scans it posts in order.
struct Client {
    sender: SendRequest<Full<Bytes>>,
    auth: HeaderValue,
    host: HeaderValue,
    addr: SocketAddr,
    bodies: Vec<Bytes>,
}

/// What one client did in a run.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    accepted: u64,
    failures: u64,
    ran_out: bool,
    first_failure: Option<String>,
}

struct Failure {
    why: String,
    broken: bool,
}

impl Client {
    async fn scan(&mut self, body: Bytes) -> Result<(), Failure> {
        let broken = |e: hyper::Error| Failure {
            why: format!("connection: {e}"),
            broken: true,
        };
        self.sender.ready().await.map_err(broken)?;
        let mut req = Request::post(PATH);
        if let Some(h) = req.headers_mut() {
            h.insert(HOST, self.host.clone());
            h.insert(AUTHORIZATION, self.auth.clone());
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req.body(Full::new(body)).map_err(|e| Failure {
            why: format!("request: {e}"),
            broken: false,
        })?;
        let res = self.sender.send_request(req).await.map_err(broken)?;
        let status = res.status();
        let body = res.into_body().collect().await.map_err(broken)?.to_bytes();
        if status != StatusCode::OK || !contains(&body, b"\"outcome\":\"pass\"") {
            return Err(Failure {
                why: format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ),
                broken: false,
            });
        }
        Ok(())
    }
}

/// Proves every ticket's two codes for the step of `now` (entry at it, exit at the
/// next), on every core; per gate, the request bodies in scan order.
fn codes(world: &World, tickets: &[&[Ticket]], now: u64) -> Vec<Vec<Bytes>> {
    let step = step_of(now);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = tickets.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = tickets
            .chunks(chunk)
            .map(|gates| {
                s.spawn(move || {
                    gates
                        .iter()
                        .map(|ts| {
                            let mut out = Vec::with_capacity(2 * ts.len());
                            for t in ts.iter() {
                                let device = &world.devices[t.device];
                                for (k, direction) in [(0, "entry"), (1, "exit")] {
                                    let qr =
                                        Pass::prove(&t.bytes, world.compound, step + k, device)
                                            .encode();
                                    let body =
                                        serde_json::json!({ "qr": qr, "direction": direction });
                                    out.push(Bytes::from(body.to_string()));
                                }
                            }
                            out
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a proving thread panicked"))
            .collect()
    })
}

async fn drive(
    mut c: Client,
    from: Instant,
    until: Instant,
    pace: Option<(Duration, Duration)>,
) -> (Option<Client>, Tally) {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(c.bodies.len()),
        ..Tally::default()
    };
    let bodies = std::mem::take(&mut c.bodies);
    let mut next = bodies.into_iter();
    // Paced: (interval, this gate's offset into it, so the gates do not fire together).
    let mut due = pace.map(|(_, offset)| Instant::now() + offset);
    loop {
        if let (Some(d), Some((interval, _))) = (due.as_mut(), pace) {
            tokio::time::sleep_until((*d).into()).await;
            *d += interval;
        }
        let start = match (&due, pace) {
            (Some(d), Some((interval, _))) => *d - interval,
            _ => Instant::now(),
        };
        if start >= until {
            break;
        }
        let Some(body) = next.next() else {
            tally.ran_out = true;
            break;
        };
        let outcome = c.scan(body).await;
        let end = Instant::now();
        if outcome.is_ok() {
            tally.accepted += 1;
        }
        if end > until {
            break;
        }
        let counted = end >= from;
        match outcome {
            Ok(()) if counted => {
                let us = end.duration_since(start).as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Ok(()) => {}
            Err(f) => {
                if counted {
                    tally.failures += 1;
                    tally.first_failure.get_or_insert(f.why);
                }
                if f.broken {
                    match connect(c.addr).await {
                        Ok(s) => c.sender = s,
                        Err(e) => {
                            tally.failures += 1;
                            tally
                                .first_failure
                                .get_or_insert(format!("reconnecting: {e}"));
                            return (None, tally);
                        }
                    }
                }
            }
        }
    }
    (Some(c), tally)
}

/// Prepares the world in `dir`, serves it, and runs the 64 gates `plan.runs` times.
pub async fn run(dir: &TempDir, plan: &Plan) -> Result<HttpResult> {
    let path = dir.0.join("gate.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await?;
    let pii = PiiKey::from_master(&[7; 32]);
    let window = (plan.warmup + plan.measure).as_secs_f64();
    let per_run = ((CAPACITY_PER_SECOND * window) / GATES as f64 / 2.0).ceil() as usize;
    // One more run's codes for the paced run.
    let per_gate = per_run * (plan.runs + 1);
    eprintln!(
        "bench: gate HTTP: preparing one compound, {GATES} gates, {} riders, {} tickets",
        GATES * RIDERS_PER_GATE,
        per_gate * GATES
    );
    let world = prepare(&store, &url, &pii, per_gate).await?;

    let state = AppState::new(store.clone(), pii, Settings::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bench: the server stopped: {e}");
        }
    });
    let host = HeaderValue::from_str(&addr.to_string())?;
    let mut senders = Vec::with_capacity(GATES);
    for _ in 0..GATES {
        senders.push(connect(addr).await?);
    }

    let mut runs = Vec::with_capacity(plan.runs);
    let mut paced = None;
    let mut accepted_total = 0u64;
    for run in 0..=plan.runs {
        // The last run is the paced one, at half the closed-loop rate.
        let pace = (run == plan.runs).then(|| {
            let rate =
                super::median(&runs.iter().map(|r: &HttpRun| r.rate).collect::<Vec<_>>()) / 2.0;
            Duration::from_secs_f64(GATES as f64 / rate.max(1.0))
        });
        // The codes hold while the server's step is theirs or the next: 30 s at least.
        let deadline = Instant::now() + Duration::from_secs(29);
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let slices: Vec<&[Ticket]> = world
            .tickets
            .iter()
            .map(|t| &t[run * per_run..(run + 1) * per_run])
            .collect();
        let bodies = codes(&world, &slices, now);
        match pace {
            None => eprintln!(
                "bench: gate HTTP run {}/{}: {GATES} gates for {:?} (+{:?} warm-up)",
                run + 1,
                plan.runs,
                plan.measure,
                plan.warmup
            ),
            Some(p) => eprintln!(
                "bench: gate HTTP paced run: {GATES} gates, one scan each every {p:?} ({:.0} scans/s) for {:?}",
                GATES as f64 / p.as_secs_f64(),
                plan.measure
            ),
        }
        let from = Instant::now() + plan.warmup;
        let until = from + plan.measure;
        ensure!(
            until < deadline,
            "the run is longer than a code stays valid"
        );
        let tasks: Vec<_> = senders
            .drain(..)
            .zip(bodies)
            .enumerate()
            .map(|(g, (sender, bodies))| {
                let pace = pace.map(|p| (p, p.mul_f64(g as f64 / GATES as f64)));
                let auth = HeaderValue::from_str(&format!("Bearer {}", world.tokens[g]));
                let client = auth.map(|auth| Client {
                    sender,
                    auth,
                    host: host.clone(),
                    addr,
                    bodies,
                });
                tokio::spawn(async move {
                    match client {
                        Ok(c) => drive(c, from, until, pace).await,
                        Err(e) => (
                            None,
                            Tally {
                                failures: 1,
                                first_failure: Some(format!("token header: {e}")),
                                ..Tally::default()
                            },
                        ),
                    }
                })
            })
            .collect();
        let mut all = Tally::default();
        for t in tasks {
            let (client, tally) = t.await.context("a gate client task")?;
            match client {
                Some(c) => senders.push(c.sender),
                None => senders.push(connect(addr).await?),
            }
            all.latencies_us.extend(tally.latencies_us);
            all.accepted += tally.accepted;
            all.failures += tally.failures;
            all.ran_out |= tally.ran_out;
            if all.first_failure.is_none() {
                all.first_failure = tally.first_failure;
            }
        }
        if all.ran_out {
            bail!(
                "a gate ran out of codes: more than {CAPACITY_PER_SECOND} scans/s; raise CAPACITY_PER_SECOND"
            );
        }
        accepted_total += all.accepted;
        all.latencies_us.sort_unstable();
        let r = HttpRun {
            rate: all.latencies_us.len() as f64 / plan.measure.as_secs_f64(),
            p50_ms: percentile_ms(&all.latencies_us, 0.50),
            p99_ms: percentile_ms(&all.latencies_us, 0.99),
            accepted: all.latencies_us.len() as u64,
            failures: all.failures,
            first_failure: all.first_failure,
        };
        eprintln!(
            "bench:   {:.0} scans/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
            r.rate, r.p50_ms, r.p99_ms, r.failures
        );
        if let Some(why) = &r.first_failure {
            eprintln!("bench:   first failure: {why}");
        }
        if pace.is_some() {
            paced = Some(r);
        } else {
            runs.push(r);
        }
    }
    drop(senders);
    server.abort();
    let _ = server.await;
    store.close().await;

    // Every accepted scan must be in the log, read afresh from the file.
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gate_events WHERE outcome = 'pass'")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    let logged = u64::try_from(logged).unwrap_or(0);
    ensure!(
        logged == accepted_total,
        "{accepted_total} scans were accepted but gate_events holds {logged} passes"
    );
    eprintln!("bench: gate HTTP: {accepted_total} accepted scans, {logged} logged passes");
    Ok(HttpResult {
        runs,
        paced,
        accepted_total,
        logged,
        tickets: per_gate * GATES,
    })
}
