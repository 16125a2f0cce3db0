//! Part (a): demands submitted through the HTTP API by concurrent clients, and the
//! limit they are held against — the rate at which the same SQLite settings can
//! durably insert the same rows with nothing in front of them.
//!
//! The server is the real one (`lianxin_server::router` on a socket, the desk, the
//! group-commit writer); the clients are tasks in the same process, each holding one
//! keep-alive HTTP/1.1 connection and sending its next demand as soon as the last is
//! answered. They use hyper's bare connection API, the cheapest client there is, so
//! that on a small machine the load generator takes as little CPU from the server as
//! possible.

use super::world::{self, World};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::Role;
use lianxin_server::{router, AppState, Settings};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use lianxin_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The route under test.
const PATH: &str = "/api/v1/demands";

/// The real server on 127.0.0.1, and a bench account's API token.
pub struct Server {
    pub addr: SocketAddr,
    pub(super) token: String,
    pub(super) task: JoinHandle<()>,
}

impl Server {
    /// Creates the submitting account and its token, then serves the whole
    /// application on a free port.
    pub async fn start(store: &Store) -> Result<Server> {
        Server::start_as(
            store,
            Role::CommunityWorker,
            Some("150207.BYXL"),
            &["demands:write"],
        )
        .await
    }

    /// Creates a bench account with `role` (scoped to the place `scope_place`, if
    /// any) and a token with `scopes`, then serves the whole application on a free
    /// port.
    pub async fn start_as(
        store: &Store,
        role: Role,
        scope_place: Option<&str>,
        scopes: &[&str],
    ) -> Result<Server> {
        let actor = Actor::system("bench");
        let hash = lianxin_server::auth::hash_password("bench-password-1")
            .map_err(|e| anyhow::anyhow!("hashing the password: {}", e.message))?;
        let account = store
            .create_account(
                &actor,
                &NewAccount {
                    username: "bench".into(),
                    display_name: "压测账号".into(),
                    password_hash: hash,
                    role,
                    scope_place_code: scope_place.map(Into::into),
                    scope_org_code: None,
                    person_id: None,
                },
            )
            .await?;
        let (token, _) = lianxin_server::api::issue_token(
            store,
            &actor,
            "bench",
            account.id,
            &scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("issuing the token: {}", e.message))?;
        let state = AppState::new(
            store.clone(),
            PiiKey::from_master(&[7; 32]),
            Settings::default(),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bench: the server stopped: {e}");
            }
        });
        Ok(Server { addr, token, task })
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// What every request carries.
struct Target {
    host: HeaderValue,
    auth: HeaderValue,
}

/// One client: a keep-alive connection and the demand it submits (at its own community).
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    body: Bytes,
    target: Arc<Target>,
    addr: SocketAddr,
}

/// Opens `n` connections, client `i` filing at community `i` mod the community count.
pub async fn clients(server: &Server, world: &World, n: usize) -> Result<Vec<Client>> {
    let target = Arc::new(Target {
        host: HeaderValue::from_str(&server.addr.to_string())?,
        auth: HeaderValue::from_str(&format!("Bearer {}", server.token))?,
    });
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let place = &world.communities[i % world.communities.len()];
        let body = serde_json::json!({
            "kind": "help",
            "category": world::CATEGORY,
            "channel": "web",
            "description": world::DESCRIPTION,
            "place": place.code,
        });
        out.push(Client {
            sender: connect(server.addr).await?,
            body: Bytes::from(body.to_string()),
            target: target.clone(),
            addr: server.addr,
        });
    }
    Ok(out)
}

pub(super) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // A broken connection shows as a failed request; the client reconnects.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Why one submission did not count.
struct Failure {
    why: String,
    /// The connection is unusable and must be replaced.
    broken: bool,
}

impl Client {
    /// Submits one demand; `Ok` only for a 201 whose body names the new demand's id.
    async fn submit(&mut self) -> Result<(), Failure> {
        let broken = |e: hyper::Error| Failure {
            why: format!("connection: {e}"),
            broken: true,
        };
        self.sender.ready().await.map_err(broken)?;
        let mut req = Request::post(PATH);
        if let Some(h) = req.headers_mut() {
            h.insert(HOST, self.target.host.clone());
            h.insert(AUTHORIZATION, self.target.auth.clone());
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(self.body.clone()))
            .map_err(|e| Failure {
                why: format!("request: {e}"),
                broken: false,
            })?;
        let res = self.sender.send_request(req).await.map_err(broken)?;
        let status = res.status();
        let body = res.into_body().collect().await.map_err(broken)?.to_bytes();
        if status != StatusCode::CREATED || !contains(&body, b"\"id\":") {
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

    /// Submits one demand outside any measurement and says what went wrong, if anything:
    /// the benchmark stops before loading a route that does not work.
    pub async fn probe(&mut self) -> Result<()> {
        self.submit()
            .await
            .map_err(|f| anyhow::anyhow!("POST {PATH} did not create a demand: {}", f.why))
    }
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One measured run of every client.
#[derive(Debug, Default)]
pub struct LoadRun {
    /// Demands created per second within the measured window.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub created: u64,
    pub failures: u64,
    /// The first failure, to show the reader.
    pub first_failure: Option<String>,
}

/// What one client did in the window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failures: u64,
    first_failure: Option<String>,
}

/// Runs every client flat out for `warmup` (not counted), then for `measure`.
/// Requests still in flight when the window closes are not counted.
pub async fn load(
    clients: Vec<Client>,
    warmup: Duration,
    measure: Duration,
) -> (Vec<Client>, LoadRun) {
    let from = Instant::now() + warmup;
    let until = from + measure;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(drive(c, from, until)))
        .collect();
    let mut clients = Vec::with_capacity(tasks.len());
    let mut all = Tally::default();
    for t in tasks {
        match t.await {
            Ok((c, tally)) => {
                if let Some(c) = c {
                    clients.push(c);
                }
                all.latencies_us.extend(tally.latencies_us);
                all.failures += tally.failures;
                if all.first_failure.is_none() {
                    all.first_failure = tally.first_failure;
                }
            }
            Err(e) => {
                all.failures += 1;
                all.first_failure.get_or_insert(format!("client task: {e}"));
            }
        }
    }
    all.latencies_us.sort_unstable();
    let run = LoadRun {
        rate: all.latencies_us.len() as f64 / measure.as_secs_f64(),
        p50_ms: percentile_ms(&all.latencies_us, 0.50),
        p99_ms: percentile_ms(&all.latencies_us, 0.99),
        created: all.latencies_us.len() as u64,
        failures: all.failures,
        first_failure: all.first_failure,
    };
    (clients, run)
}

/// One client's loop; gives the client back unless its connection died for good.
async fn drive(mut c: Client, from: Instant, until: Instant) -> (Option<Client>, Tally) {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(16 * 1024),
        ..Tally::default()
    };
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        let outcome = c.submit().await;
        let end = Instant::now();
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

/// The `q` quantile of sorted microseconds, in milliseconds (nearest rank).
pub(super) fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// Inserts demand rows straight into `store` for `duration`, `per_commit` rows per
/// durable transaction, and returns rows per second. The rows are the ones the desk
/// writes (demand, history entry, rate cell), through the store's own insert.
pub async fn insert_rate(
    store: &Store,
    world: &World,
    per_commit: usize,
    duration: Duration,
) -> Result<f64> {
    if per_commit == 0 {
        bail!("per_commit must be at least 1");
    }
    let unit = world.units.first().context("a unit")?.id;
    let mut rows = 0usize;
    let mut i = 0usize;
    let start = Instant::now();
    while start.elapsed() < duration {
        // Built inside the loop, as the desk builds each demand before writing it.
        let chunk: Vec<_> = (0..per_commit)
            .map(|k| {
                let place = &world.communities[(i + k) % world.communities.len()];
                world::fresh_demand(place, unit)
            })
            .collect();
        i += per_commit;
        store
            .import_demands(&chunk)
            .await
            .map_err(|e| anyhow::anyhow!("inserting demands: {e}"))?;
        rows += chunk.len();
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.50), 50.0);
        assert_eq!(percentile_ms(&us, 0.99), 99.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
