//! `lianxin gate`: the offline gate box (issue 5, section 4). It keeps in its data
//! folder everything it needs to decide without the server, and a journal of what it
//! decided:
//!
//! - `trust.json`, `revocations.json`: the signed lists exactly as the server sent
//!   them (`GET /api/v1/gate/trust`, `/gate/revocations`), checked again on start;
//! - `state.json`: the time of the last successful sync (the `--max-offline` clock);
//! - `box.key`: the box's own Ed25519 key (hex), made on first start, which signs
//!   every journal event;
//! - `seen.log`: replay records (`ticket digest:step`), appended and fsynced before
//!   a scan is answered; only the last steps are kept on start;
//! - `journal.jsonl`: the signed entry and exit events, appended and fsynced before
//!   a pass is answered; presence is rebuilt from it on start;
//! - `uploaded.log`: the ids of events the server has taken.
//!
//! Trust: a list is accepted only when signed by an issuer key the box already
//! trusts (its stored list, or `--issuer-key`). With neither — the first sync of an
//! unpinned box — the server's answer is trusted as it comes (trust on first use),
//! provided it is signed by a key it lists. See docs/operations.md.
//!
//! Every function takes the time (`now`, Unix seconds) from its caller, so tests
//! drive the clock.

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use lianxin_pass::{step_of, Deny, Direction, Gate, GateLedger, KeyId, MemoryLedger};
use lianxin_pass::{TrustList, TrustedKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `lianxin gate` is told.
#[derive(Debug, Clone)]
pub struct BoxConfig {
    /// The server's base URL, e.g. `http://10.0.0.1:8080`.
    pub server: String,
    pub token: String,
    /// The compound's id (as in the tickets).
    pub compound: u64,
    pub dir: PathBuf,
    /// Seconds after the last successful sync past which every scan is refused.
    pub max_offline: u64,
    /// A pinned issuer public key (Ed25519, hex): the first sync must be signed by it.
    pub issuer_key: Option<[u8; 32]>,
}

/// A list as the server signs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedDoc {
    pub payload: String,
    pub kid: String,
    pub signature: String,
    /// The same payload signed by every issuer key trusted when it was made (so a
    /// rotation is followed: the old key vouches for the list bringing the new one).
    #[serde(default)]
    pub signatures: Vec<CoSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoSignature {
    pub kid: String,
    pub signature: String,
}

/// One admitted passage, signed by the box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `ticket digest hex:step`: unique per admitted code.
    pub id: String,
    pub compound: u64,
    pub pseudonym: String,
    pub direction: String,
    pub at: u64,
    pub signature: String,
}

/// The box's answer to a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub message: String,
}

impl Answer {
    fn pass() -> Answer {
        Answer {
            outcome: "pass",
            reason: None,
            message: "pass".into(),
        }
    }
    fn deny(code: &'static str, message: String) -> Answer {
        Answer {
            outcome: "deny",
            reason: Some(code),
            message,
        }
    }
}

#[derive(Debug, Deserialize)]
struct TrustPayload {
    issued_at: u64,
    keys: Vec<TrustPayloadKey>,
}

#[derive(Debug, Deserialize)]
struct TrustPayloadKey {
    kid: String,
    public_key: String,
    accepted_until: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct RevocationPayload {
    issued_at: u64,
    pseudonyms: Vec<String>,
    device_keys: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    last_sync: Option<u64>,
    trust_issued_at: u64,
}

fn hex_array<const N: usize>(raw: &str) -> Option<[u8; N]> {
    hex::decode(raw.trim())
        .ok()
        .and_then(|b| <[u8; N]>::try_from(b).ok())
}

/// Parses `--issuer-key`.
pub fn parse_issuer_key(raw: &str) -> Result<[u8; 32]> {
    let k =
        hex_array::<32>(raw).ok_or_else(|| anyhow!("--issuer-key must be 64 hex characters"))?;
    VerifyingKey::from_bytes(&k).map_err(|_| anyhow!("--issuer-key is not an Ed25519 key"))?;
    Ok(k)
}

fn trust_list_of(p: &TrustPayload) -> Result<TrustList> {
    let mut list = TrustList::default();
    for k in &p.keys {
        let kid = hex::decode(&k.kid)
            .ok()
            .and_then(|b| KeyId::from_slice(&b))
            .ok_or_else(|| anyhow!("the trust list has a bad key id"))?;
        let key = hex_array::<32>(&k.public_key)
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| anyhow!("the trust list has a bad key"))?;
        list.keys.push(TrustedKey {
            kid,
            key,
            accepted_until: k.accepted_until,
        });
    }
    Ok(list)
}

/// Checks a signed list against candidate keys: it holds when any of its signatures
/// verifies with a candidate of the same key id (a pinned key, with an empty id,
/// matches any).
fn verify_doc(doc: &SignedDoc, keys: &[(Vec<u8>, VerifyingKey)]) -> Result<()> {
    let sigs = std::iter::once((doc.kid.as_str(), doc.signature.as_str())).chain(
        doc.signatures
            .iter()
            .map(|c| (c.kid.as_str(), c.signature.as_str())),
    );
    for (kid, sig) in sigs {
        let (Ok(kid), Some(sig)) = (hex::decode(kid), hex_array::<64>(sig)) else {
            continue;
        };
        let sig = Signature::from_bytes(&sig);
        let ok = keys
            .iter()
            .filter(|(k, _)| k.is_empty() || *k == kid)
            .any(|(_, key)| key.verify(doc.payload.as_bytes(), &sig).is_ok());
        if ok {
            return Ok(());
        }
    }
    bail!("the list is not signed by an issuer key this box trusts")
}

fn keys_of(list: &TrustList) -> Vec<(Vec<u8>, VerifyingKey)> {
    list.keys
        .iter()
        .map(|k| (k.kid.as_bytes().to_vec(), k.key))
        .collect()
}

/// Writes a file whole: temp file, fsync, rename, fsync the folder.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn append_durably(f: &mut File, line: &str) -> Result<()> {
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_data()?;
    Ok(())
}

fn open_append(path: &Path) -> Result<File> {
    // A last line torn by a power cut is closed first, so the next line stands alone.
    if let Ok(bytes) = std::fs::read(path) {
        if bytes.last().is_some_and(|b| *b != b'\n') {
            let mut f = OpenOptions::new().append(true).open(path)?;
            f.write_all(b"\n")?;
            f.sync_data()?;
        }
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        // A torn last line (power cut mid-write) is skipped by the callers' parsers.
        Ok(s) => Ok(s.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A ledger that notes the code spent, to persist it before answering.
struct Spending<'a> {
    mem: &'a mut MemoryLedger,
    spent: Option<([u8; 32], u64)>,
}

impl GateLedger for Spending<'_> {
    fn first_use(&mut self, ticket: &[u8; 32], step: u64) -> bool {
        let fresh = self.mem.first_use(ticket, step);
        if fresh {
            self.spent = Some((*ticket, step));
        }
        fresh
    }
    fn rider_revoked(&self, p: &[u8; 16]) -> bool {
        self.mem.rider_revoked(p)
    }
    fn device_revoked(&self, d: &[u8; 32]) -> bool {
        self.mem.device_revoked(d)
    }
    fn inside(&self, p: &[u8; 16]) -> bool {
        self.mem.inside(p)
    }
}

/// The gate box: its lists, ledger and journal, loaded from and kept in its folder.
pub struct GateBox {
    cfg: BoxConfig,
    key: SigningKey,
    trust: TrustList,
    state: State,
    ledger: MemoryLedger,
    journal: Vec<Event>,
    uploaded: HashSet<String>,
    seen_file: File,
    journal_file: File,
    uploaded_file: File,
    http: reqwest::Client,
}

impl GateBox {
    /// Opens (or creates) the box's folder and reloads everything in it.
    pub fn open(cfg: BoxConfig, now: u64) -> Result<GateBox> {
        let dir = cfg.dir.clone();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // The box's own key.
        let key_path = dir.join("box.key");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(s) => SigningKey::from_bytes(
                &hex_array::<32>(&s).ok_or_else(|| anyhow!("{} is damaged", key_path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
                write_atomic(&dir, "box.key", hex::encode(key.to_bytes()).as_bytes())?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
                }
                key
            }
            Err(e) => return Err(e).context("reading box.key"),
        };
        let state: State = match std::fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b).context("state.json is damaged")?,
            Err(_) => State::default(),
        };
        let mut b = GateBox {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .pool_max_idle_per_host(0)
                .build()?,
            seen_file: open_append(&dir.join("seen.log"))?,
            journal_file: open_append(&dir.join("journal.jsonl"))?,
            uploaded_file: open_append(&dir.join("uploaded.log"))?,
            cfg,
            key,
            trust: TrustList::default(),
            state,
            ledger: MemoryLedger::default(),
            journal: Vec::new(),
            uploaded: HashSet::new(),
        };
        // The stored lists, checked again: the trust list intact, and signed by the
        // trust list the revocations.
        if let Ok(raw) = std::fs::read(dir.join("trust.json")) {
            let doc: SignedDoc = serde_json::from_slice(&raw).context("trust.json is damaged")?;
            let payload: TrustPayload = serde_json::from_str(&doc.payload)?;
            let list = trust_list_of(&payload)?;
            // It was checked against the keys trusted then when it was fetched; here
            // only that it is intact (signed by a key it lists).
            verify_doc(&doc, &keys_of(&list)).context("trust.json")?;
            b.trust = list;
        }
        if let Ok(raw) = std::fs::read(dir.join("revocations.json")) {
            let doc: SignedDoc =
                serde_json::from_slice(&raw).context("revocations.json is damaged")?;
            verify_doc(&doc, &keys_of(&b.trust)).context("revocations.json")?;
            b.apply_revocations(&doc)?;
        }
        // Replay records of the steps still acceptable.
        let oldest = step_of(now).saturating_sub(1);
        for line in read_lines(&dir.join("seen.log"))? {
            if let Some((d, s)) = line.split_once(':') {
                if let (Some(d), Ok(s)) = (hex_array::<32>(d), s.parse::<u64>()) {
                    if s >= oldest {
                        b.ledger.seen.insert((d, s));
                    }
                }
            }
        }
        // The journal, in order: presence follows it.
        for line in read_lines(&dir.join("journal.jsonl"))? {
            let Ok(e) = serde_json::from_str::<Event>(&line) else {
                continue;
            };
            if let Some(p) = hex_array::<16>(&e.pseudonym) {
                if e.direction == "entry" {
                    b.ledger.inside.insert(p);
                } else {
                    b.ledger.inside.remove(&p);
                }
            }
            b.journal.push(e);
        }
        b.uploaded = read_lines(&dir.join("uploaded.log"))?.into_iter().collect();
        Ok(b)
    }

    fn apply_revocations(&mut self, doc: &SignedDoc) -> Result<u64> {
        let p: RevocationPayload = serde_json::from_str(&doc.payload)?;
        self.ledger.revoked_riders = p
            .pseudonyms
            .iter()
            .filter_map(|h| hex_array::<16>(h))
            .collect();
        self.ledger.revoked_devices = p
            .device_keys
            .iter()
            .filter_map(|h| hex_array::<32>(h))
            .collect();
        Ok(p.issued_at)
    }

    /// The box's public key (hex), which signs its events.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// When the box last synced (Unix seconds).
    pub fn last_sync(&self) -> Option<u64> {
        self.state.last_sync
    }

    /// Events not yet taken by the server.
    pub fn pending(&self) -> Vec<Event> {
        self.journal
            .iter()
            .filter(|e| !self.uploaded.contains(&e.id))
            .cloned()
            .collect()
    }

    /// Checks a scanned QR at `now`. The replay record and (for a pass) the signed
    /// event are on disk before this returns.
    pub fn scan(&mut self, qr: &str, direction: Direction, now: u64) -> Result<Answer> {
        let fresh = self
            .state
            .last_sync
            .is_some_and(|t| now.saturating_sub(t) <= self.cfg.max_offline);
        if !fresh {
            return Ok(Answer::deny(
                "offline_too_long",
                match self.state.last_sync {
                    None => "this gate box has never reached the server: it cannot check passes yet".into(),
                    Some(t) => format!(
                        "this gate box has not reached the server for {} s (limit {} s): it cannot check passes until it syncs",
                        now.saturating_sub(t),
                        self.cfg.max_offline
                    ),
                },
            ));
        }
        self.ledger.forget_before(step_of(now).saturating_sub(1));
        let gate = Gate {
            compound: self.cfg.compound,
            trust: &self.trust,
        };
        let mut ledger = Spending {
            mem: &mut self.ledger,
            spent: None,
        };
        let checked = gate.check(qr, now, direction, &mut ledger);
        let spent = ledger.spent;
        if let Some((digest, step)) = spent {
            append_durably(
                &mut self.seen_file,
                &format!("{}:{step}", hex::encode(digest)),
            )?;
        }
        let admit = match checked {
            Ok(a) => a,
            Err(d) => return Ok(deny(d)),
        };
        let id = format!("{}:{}", hex::encode(admit.ticket.digest), admit.step);
        let pseudonym = hex::encode(admit.ticket.claims.pseudonym);
        let message = lianxin_server::api::gate::offline_event_message(
            &id,
            self.cfg.compound,
            &pseudonym,
            direction.as_str(),
            now,
        );
        let event = Event {
            signature: hex::encode(self.key.sign(message.as_bytes()).to_bytes()),
            id,
            compound: self.cfg.compound,
            pseudonym,
            direction: direction.as_str().into(),
            at: now,
        };
        append_durably(&mut self.journal_file, &serde_json::to_string(&event)?)?;
        self.ledger.record(&admit);
        self.journal.push(event);
        Ok(Answer::pass())
    }

    /// Fetches both lists, checks them, keeps them, then uploads the queue; returns
    /// how many events the server took. On any failure the box stays on its stored
    /// lists.
    pub async fn sync(&mut self, now: u64) -> Result<usize> {
        let (trust, revs) = fetch_lists(&self.http, &self.cfg).await?;
        self.apply_sync(&trust, &revs, now)?;
        let results =
            post_events(&self.http, &self.cfg, &self.public_key(), &self.pending()).await?;
        self.mark_uploaded(&results)
    }

    /// Checks fetched lists and makes them the box's.
    pub fn apply_sync(
        &mut self,
        trust_doc: &SignedDoc,
        revs_doc: &SignedDoc,
        now: u64,
    ) -> Result<()> {
        let payload: TrustPayload =
            serde_json::from_str(&trust_doc.payload).context("the trust list")?;
        let list = trust_list_of(&payload)?;
        // The keys this box trusts now (a retired key past its overlap no longer
        // vouches for anything), and the pinned one.
        let mut candidates: Vec<_> = self
            .trust
            .keys
            .iter()
            .filter(|k| k.accepted_until.is_none_or(|u| now < u))
            .map(|k| (k.kid.as_bytes().to_vec(), k.key))
            .collect();
        if let Some(k) = self.cfg.issuer_key {
            candidates.push((Vec::new(), VerifyingKey::from_bytes(&k)?));
        }
        if candidates.is_empty() {
            // Trust on first use: the server's answer, if it is signed by a key it lists.
            candidates = keys_of(&list);
        }
        verify_doc(trust_doc, &candidates).context("the trust list")?;
        if payload.issued_at < self.state.trust_issued_at {
            bail!("the trust list is older than the one this box has");
        }
        verify_doc(revs_doc, &keys_of(&list)).context("the revocation list")?;
        let dir = self.cfg.dir.clone();
        write_atomic(&dir, "trust.json", &serde_json::to_vec(trust_doc)?)?;
        write_atomic(&dir, "revocations.json", &serde_json::to_vec(revs_doc)?)?;
        self.trust = list;
        self.apply_revocations(revs_doc)?;
        self.state.last_sync = Some(now);
        self.state.trust_issued_at = payload.issued_at;
        write_atomic(&dir, "state.json", &serde_json::to_vec(&self.state)?)?;
        Ok(())
    }

    /// Notes the events the server has answered for (whatever its verdict: it has
    /// them, or has refused them for good); returns how many were new.
    pub fn mark_uploaded(&mut self, results: &[(String, String)]) -> Result<usize> {
        let mut taken = 0;
        for (id, outcome) in results {
            if outcome == "rejected" {
                tracing::warn!(id, "the server rejected a gate event");
            }
            if self.uploaded.insert(id.clone()) {
                append_durably(&mut self.uploaded_file, id)?;
                taken += 1;
            }
        }
        Ok(taken)
    }
}

async fn fetch(http: &reqwest::Client, cfg: &BoxConfig, path: &str) -> Result<SignedDoc> {
    let url = format!("{}/api/v1{path}", cfg.server.trim_end_matches('/'));
    let r = http
        .get(&url)
        .bearer_auth(&cfg.token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !r.status().is_success() {
        bail!("GET {url}: {}", r.status());
    }
    Ok(r.json().await?)
}

/// The signed trust and revocation lists, as the server sends them.
pub async fn fetch_lists(
    http: &reqwest::Client,
    cfg: &BoxConfig,
) -> Result<(SignedDoc, SignedDoc)> {
    Ok((
        fetch(http, cfg, "/gate/trust").await?,
        fetch(http, cfg, "/gate/revocations").await?,
    ))
}

/// Uploads events (`POST /api/v1/gate/events`); returns the server's (id, outcome)
/// for each.
pub async fn post_events(
    http: &reqwest::Client,
    cfg: &BoxConfig,
    box_key: &str,
    events: &[Event],
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for batch in events.chunks(500) {
        let url = format!("{}/api/v1/gate/events", cfg.server.trim_end_matches('/'));
        let r = http
            .post(&url)
            .bearer_auth(&cfg.token)
            .json(&json!({ "box_key": box_key, "events": batch }))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !r.status().is_success() {
            bail!("POST {url}: {}", r.status());
        }
        let body: Value = r.json().await?;
        for result in body["results"].as_array().into_iter().flatten() {
            if let (Some(id), Some(outcome)) = (result["id"].as_str(), result["outcome"].as_str()) {
                out.push((id.to_string(), outcome.to_string()));
            }
        }
    }
    Ok(out)
}

fn deny(d: Deny) -> Answer {
    Answer::deny(d.code(), d.to_string())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct ScanBody {
    qr: String,
    direction: String,
}

type Shared = Arc<tokio::sync::Mutex<GateBox>>;

async fn scan_handler(
    axum::extract::State(b): axum::extract::State<Shared>,
    axum::Json(body): axum::Json<ScanBody>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(direction) = Direction::parse(&body.direction) else {
        return (
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "error": "direction must be entry or exit" })),
        )
            .into_response();
    };
    let answer = b.lock().await.scan(&body.qr, direction, unix_now());
    match answer {
        Ok(a) => axum::Json(a).into_response(),
        Err(e) => {
            tracing::error!("scan failed: {e:#}");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({ "outcome": "deny", "reason": "gate_error", "message": "the gate box cannot record the scan" })),
            )
                .into_response()
        }
    }
}

async fn status_handler(
    axum::extract::State(b): axum::extract::State<Shared>,
) -> axum::Json<Value> {
    let b = b.lock().await;
    axum::Json(json!({
        "last_sync": b.last_sync(),
        "queued": b.pending().len(),
        "box_key": b.public_key(),
    }))
}

/// Runs the box: syncs now and every 30 s, and serves `POST /scan` and `GET /status`
/// on `listen`.
pub async fn run(cfg: BoxConfig, listen: &str) -> Result<()> {
    let mut b = GateBox::open(cfg, unix_now())?;
    match b.sync(unix_now()).await {
        Ok(n) => tracing::info!(uploaded = n, "synced"),
        Err(e) => tracing::warn!("sync failed, working offline: {e:#}"),
    }
    println!(
        "gate box key {} ({} events queued)",
        b.public_key(),
        b.pending().len()
    );
    let shared: Shared = Arc::new(tokio::sync::Mutex::new(b));
    let syncer = shared.clone();
    tokio::spawn(async move {
        // The network calls run without the lock, so scans never wait on them.
        let (http, cfg) = {
            let b = syncer.lock().await;
            (b.http.clone(), b.cfg.clone())
        };
        loop {
            let round = async {
                let (trust, revs) = fetch_lists(&http, &cfg).await?;
                let (key, pending) = {
                    let mut b = syncer.lock().await;
                    b.apply_sync(&trust, &revs, unix_now())?;
                    (b.public_key(), b.pending())
                };
                let results = post_events(&http, &cfg, &key, &pending).await?;
                syncer.lock().await.mark_uploaded(&results)
            };
            match round.await {
                Ok(n) => tracing::info!(uploaded = n, "synced"),
                Err(e) => tracing::warn!("sync failed, working offline: {e:#}"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    let app = axum::Router::new()
        .route("/scan", axum::routing::post(scan_handler))
        .route("/status", axum::routing::get(status_handler))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    println!("gate box on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
