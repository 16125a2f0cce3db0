//! The demand desk: everything the platform does with a demand, whoever asks — the
//! JSON API, the web pages, Open311 and the scheduler all come through here, so a
//! demand is validated, routed, timed and counted the same way whatever the channel.
//!
//! It glues the pure rules to the store: it resolves the place and category, routes
//! the demand (`lianxin_domain::routing`), computes deadlines on the working-day
//! calendar (`calendar`, `TimeLimitPolicy`), asks the loop state machine
//! (`demand::LoopState`) whether a step is allowed, works out the demand's timer and its
//! contribution to the three rates (`rates`), and hands the result to the store, which
//! writes it in one transaction. Each change is then announced on a broadcast channel
//! that the live progress pages (server-sent events) listen to.
//!
//! Routing rules, time limits and holiday calendars are read once and cached here;
//! the admin handlers call [`DemandDesk::reload`] after changing them.

use chrono::{DateTime, Duration, Utc};
use lianxin_domain::calendar::{warning_at, HolidayCalendar, TimeLimit};
use lianxin_domain::demand::{
    Actor, Command, LoopState, Rating, Status, TimeLimitPolicy, UnitId, Urgency,
};
use lianxin_domain::intake::{self, Channel, DemandKind, PhotoFormat};
use lianxin_domain::person::PhoneNumber;
use lianxin_domain::pii::{random_token, PiiKey};
use lianxin_domain::rates::{DemandOutcome, RateCounts};
use lianxin_domain::routing::{RoutingRule, RoutingTable};
use lianxin_domain::ValidationError;
use lianxin_store::demands::{Category, Demand, NewDemand, NewEvent, NewNotice, NewPhoto, Step};
use lianxin_store::registry::Place;
use lianxin_store::{Store, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, mpsc, oneshot};

/// The wall clock, with an offset that tests move forward to make deadlines pass.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Now, to the millisecond (the precision times are stored with).
    pub fn now(&self) -> DateTime<Utc> {
        let ms = Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed);
        DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
    }

    /// Moves this clock (tests, and the demo replaying a back-dated history; a
    /// deployment never calls it). A negative duration moves it back.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

/// How the loop is timed, beyond the per-category limits.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub calendar: HolidayCalendar,
    pub policy: TimeLimitPolicy,
    /// How long a reporter has to rate an answer before it closes unrated.
    pub rating_window: TimeLimit,
    /// The share of a step's time after which its unit is warned.
    pub warn_fraction: f64,
    /// The share of the rating window after which the reporter is reminded.
    pub remind_fraction: f64,
    /// How long after each escalation, while still overdue, the next level is told.
    pub escalation_step: TimeLimit,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            calendar: HolidayCalendar::official(),
            policy: TimeLimitPolicy::default(),
            rating_window: TimeLimit::parse("3wd").expect("valid"),
            warn_fraction: 0.8,
            remind_fraction: 0.5,
            escalation_step: TimeLimit::parse("1wd").expect("valid"),
        }
    }
}

/// What the desk caches from the database.
#[derive(Debug, Default)]
struct Snapshot {
    config: LoopConfig,
    routing: RoutingTable,
    /// The names of the units the rules route to (the owners of new demands).
    unit_names: HashMap<i64, String>,
    categories: HashMap<String, Category>,
}

/// A change to a demand, announced to live pages.
#[derive(Debug, Clone, Serialize)]
pub struct DemandChange {
    pub id: i64,
    pub status: Status,
    pub version: i64,
}

/// Who submits a demand.
#[derive(Debug, Clone)]
pub struct Submitter {
    /// The audit-style actor text (`account:7`, `token:3`, `public`).
    pub actor: String,
    pub name: String,
    pub account_id: Option<i64>,
}

/// A demand as it comes in, before validation.
#[derive(Debug, Clone, Default)]
pub struct Intake {
    pub kind: String,
    pub category: String,
    pub channel: String,
    pub title: Option<String>,
    pub description: String,
    /// A registry place code.
    pub place_code: Option<String>,
    pub place_id: Option<i64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
    pub attributes: Option<serde_json::Value>,
    pub reporter_name: Option<String>,
    pub reporter_phone: Option<String>,
    pub photos: Vec<Vec<u8>>,
    pub visit_id: Option<i64>,
}

/// What the submitter gets back.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    pub id: i64,
    /// The public tracking token: shown once, stored only as a hash.
    pub tracking_token: String,
    pub status: Status,
    pub category: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub place_id: i64,
    pub place_name: String,
    pub deadline: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

/// A step a unit takes.
#[derive(Debug, Clone)]
pub enum Action {
    Assess {
        urgency: Option<Urgency>,
        category: Option<String>,
        deadline: Option<DateTime<Utc>>,
        note: Option<String>,
    },
    Assign {
        unit: i64,
        deadline: Option<DateTime<Utc>>,
        note: Option<String>,
    },
    Start {
        note: Option<String>,
    },
    Answer {
        text: String,
    },
    Return {
        reason: String,
        deadline: Option<DateTime<Utc>>,
    },
    Transfer {
        unit: i64,
        reason: String,
    },
    AcceptTransfer {
        deadline: Option<DateTime<Utc>>,
        note: Option<String>,
    },
    DeclineTransfer {
        reason: String,
    },
    Merge {
        into: i64,
        note: Option<String>,
    },
    Reject {
        reason: String,
    },
    CloseUnrated,
}

impl Action {
    pub const NAMES: [&'static str; 11] = [
        "assess",
        "assign",
        "start",
        "answer",
        "return",
        "transfer",
        "accept_transfer",
        "decline_transfer",
        "merge",
        "reject",
        "close_unrated",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Action::Assess { .. } => "assess",
            Action::Assign { .. } => "assign",
            Action::Start { .. } => "start",
            Action::Answer { .. } => "answer",
            Action::Return { .. } => "return",
            Action::Transfer { .. } => "transfer",
            Action::AcceptTransfer { .. } => "accept_transfer",
            Action::DeclineTransfer { .. } => "decline_transfer",
            Action::Merge { .. } => "merge",
            Action::Reject { .. } => "reject",
            Action::CloseUnrated => "close_unrated",
        }
    }
}

/// Who takes a step: a staff member acting for the units in their scope (`None`:
/// every unit), or the reporter.
#[derive(Debug, Clone)]
pub struct StepBy {
    pub actor: String,
    pub name: String,
    pub units: Option<Vec<i64>>,
}

impl StepBy {
    fn acts_for(&self, unit: i64) -> bool {
        self.units.as_ref().is_none_or(|u| u.contains(&unit))
    }
}

pub struct DemandDesk {
    store: Store,
    pii: PiiKey,
    snapshot: RwLock<Arc<Snapshot>>,
    changes: broadcast::Sender<DemandChange>,
    intake: mpsc::Sender<IntakeJob>,
    /// Places looked up by code for intake, until the next `reload` (at most a
    /// minute): places change rarely and every submission names one. A code not
    /// found is not remembered, so a new place is usable at once.
    places: std::sync::Mutex<HashMap<String, Place>>,
    pub clock: Clock,
}

/// A new demand waiting to be stored, and who to tell its id.
type IntakeJob = (NewDemand, oneshot::Sender<Result<i64, StoreError>>);

/// The most new demands stored by one write.
const INTAKE_BATCH: usize = 256;

/// Stores new demands as they come, together: whatever is waiting when the previous
/// write finishes goes into the next one, a few multi-row statements for the lot
/// (see `Store::insert_demands`). If a batch fails, its demands are stored one by
/// one so that each gets its own answer. Demands with photos go alone: they are
/// large and rare.
async fn run_intake(store: Store, mut jobs: mpsc::Receiver<IntakeJob>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < INTAKE_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (alone, together): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|(d, _)| !d.photos.is_empty());
        let mut singles = alone;
        if together.len() > 1 {
            let demands: Vec<NewDemand> = together.iter().map(|(d, _)| d.clone()).collect();
            match store.insert_demands(demands).await {
                Ok(ids) => {
                    for ((_, reply), id) in together.into_iter().zip(ids) {
                        let _ = reply.send(Ok(id));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, demands = together.len(), "an intake batch failed; storing its demands one by one");
                    singles.extend(together);
                }
            }
        } else {
            singles.extend(together);
        }
        for (d, reply) in singles {
            let _ = reply.send(store.insert_demand(d).await);
        }
    }
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, code, message))
}

impl DemandDesk {
    /// A desk on `store`; starts its intake writer, so it must be created inside a
    /// Tokio runtime.
    pub fn new(store: Store, pii: PiiKey) -> DemandDesk {
        let (intake, jobs) = mpsc::channel(4 * INTAKE_BATCH);
        tokio::spawn(run_intake(store.clone(), jobs));
        DemandDesk {
            store,
            pii,
            snapshot: RwLock::default(),
            changes: broadcast::channel(1024).0,
            intake,
            places: std::sync::Mutex::default(),
            clock: Clock::default(),
        }
    }

    /// Reads categories, routing rules, time limits and holiday calendars again.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut config = LoopConfig::default();
        for row in self.store.time_limits().await? {
            let limit = TimeLimit::parse(&row.time_limit)?;
            match &row.category {
                Some(c) => config.policy.set(c, row.urgency, limit),
                None => config.policy.set_default(row.urgency, limit),
            }
        }
        for (year, toml) in self.store.calendar_years().await? {
            let cal = HolidayCalendar::from_toml(&toml)?;
            tracing::debug!(year, "holiday calendar added");
            config.calendar.merge(cal);
        }
        let rows = self.store.routing_rules().await?;
        let unit_names = rows
            .iter()
            .map(|r| (r.unit_id, r.unit_name.clone()))
            .collect();
        let rules = rows
            .into_iter()
            .map(|r| RoutingRule {
                category: r.category,
                place_path: r.place_path,
                unit: r.unit_id,
            })
            .collect();
        let categories = self
            .store
            .categories(false)
            .await?
            .into_iter()
            .map(|c| (c.code.clone(), c))
            .collect();
        self.places.lock().expect("place cache").clear();
        *self.snapshot.write().expect("snapshot lock") = Arc::new(Snapshot {
            config,
            routing: RoutingTable::new(rules),
            unit_names,
            categories,
        });
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("snapshot lock").clone()
    }

    pub fn config(&self) -> LoopConfig {
        self.snapshot().config.clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Live changes, for server-sent events.
    pub fn subscribe(&self) -> broadcast::Receiver<DemandChange> {
        self.changes.subscribe()
    }

    fn announce(&self, d: &Demand) {
        // Nobody listening is fine.
        let _ = self.changes.send(DemandChange {
            id: d.id,
            status: d.status,
            version: d.version,
        });
    }

    /// The active category `code`, or a clear error.
    pub fn category(&self, code: &str) -> Result<Category, StoreError> {
        self.snapshot()
            .categories
            .get(code.trim())
            .filter(|c| c.active)
            .cloned()
            .ok_or_else(|| {
                invalid(
                    "category",
                    "unknown_category",
                    format!("unknown category {:?}", code.trim()),
                )
            })
    }

    pub fn categories(&self) -> Vec<Category> {
        let mut all: Vec<Category> = self
            .snapshot()
            .categories
            .values()
            .filter(|c| c.active)
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.sort, &a.code).cmp(&(b.sort, &b.code)));
        all
    }

    async fn resolve_place(&self, i: &Intake) -> Result<Place, StoreError> {
        let everything = lianxin_domain::role::DataScope::everything();
        if let Some(code) = i
            .place_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            if let Some(p) = self.places.lock().expect("place cache").get(code) {
                return Ok(p.clone());
            }
            let place = self.store.place_by_code(code).await?.ok_or_else(|| {
                invalid("place", "unknown_place", format!("unknown place {code:?}"))
            })?;
            let mut cache = self.places.lock().expect("place cache");
            if cache.len() >= 100_000 {
                cache.clear();
            }
            cache.insert(code.to_string(), place.clone());
            return Ok(place);
        }
        if let Some(id) = i.place_id {
            return self
                .store
                .place(id, &everything)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => {
                        invalid("place", "unknown_place", format!("unknown place id {id}"))
                    }
                    other => other,
                });
        }
        match (i.lat, i.lon) {
            (Some(lat), Some(lon)) => self.store.nearest_place(lat, lon).await?.ok_or_else(|| {
                invalid(
                    "lat",
                    "no_place_near",
                    "no registered place is near this point; give a place",
                )
            }),
            _ => Err(invalid(
                "place",
                "required",
                "give a place (code) or a point (lat and long)",
            )),
        }
    }

    /// Validates, routes, times and stores a new demand.
    pub async fn submit(&self, i: Intake, by: &Submitter) -> Result<Submitted, StoreError> {
        let (d, submitted) = self.prepare(i, by).await?;
        self.submit_prepared(d, submitted).await
    }

    /// Stores a demand [`prepare`](Self::prepare) validated: callers that must check
    /// several demands before writing anything (a visit with the demands it
    /// collected) prepare them all first.
    pub async fn submit_prepared(
        &self,
        d: NewDemand,
        mut submitted: Submitted,
    ) -> Result<Submitted, StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::NotCommitted("the intake writer has stopped".into());
        self.intake.send((d, reply)).await.map_err(|_| closed())?;
        submitted.id = answer.await.map_err(|_| closed())??;
        let _ = self.changes.send(DemandChange {
            id: submitted.id,
            status: submitted.status,
            version: 1,
        });
        Ok(submitted)
    }

    /// Validates, routes and times a new demand without storing it: `submit` stores
    /// one, imports store many in one transaction. The `Submitted` has id 0 until
    /// stored.
    pub async fn prepare(
        &self,
        mut i: Intake,
        by: &Submitter,
    ) -> Result<(NewDemand, Submitted), StoreError> {
        let snap = self.snapshot();
        let kind = DemandKind::parse(&i.kind)?;
        let channel = Channel::parse(&i.channel)?;
        let category = self.category(&i.category)?;
        let description =
            intake::text("description", &i.description, intake::MAX_DESCRIPTION_CHARS)?;
        let title = match i.title.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(t) => intake::text("title", t, intake::MAX_TITLE_CHARS)?,
            None => intake::title_from(&description),
        };
        let address = i
            .address
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(|a| intake::text("address", a, 200))
            .transpose()?;
        let reporter_name = i
            .reporter_name
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(|a| intake::text("reporter_name", a, 50))
            .transpose()?;
        if let (Some(lat), Some(lon)) = (i.lat, i.lon) {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(invalid(
                    "lat",
                    "invalid_point",
                    "lat must be -90..90 and lon -180..180",
                ));
            }
        } else if i.lat.is_some() != i.lon.is_some() {
            return Err(invalid(
                "lat",
                "invalid_point",
                "give both lat and lon, or neither",
            ));
        }
        let reporter_phone = i
            .reporter_phone
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                PhoneNumber::parse(p).map(|phone| {
                    (
                        self.pii.encrypt(phone.expose()),
                        self.pii.keyed_hash("phone", phone.expose()),
                        phone.masked(),
                    )
                })
            })
            .transpose()?;
        if i.photos.len() > intake::MAX_PHOTOS {
            return Err(invalid(
                "photos",
                "too_many_photos",
                format!("at most {} photos", intake::MAX_PHOTOS),
            ));
        }
        let mut photos = Vec::with_capacity(i.photos.len());
        for bytes in std::mem::take(&mut i.photos) {
            let format = PhotoFormat::check(&bytes)?;
            photos.push(NewPhoto {
                content_type: format.content_type().to_string(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                bytes,
            });
        }
        let place = self.resolve_place(&i).await?;
        let route = snap
            .routing
            .route(&category.code, &place.path)
            .map_err(|e| invalid("place", "unroutable", e.to_string()))?;
        let now = self.now();
        let urgency = category.default_urgency;
        let limit = snap.config.policy.limit(&category.code, urgency);
        let deadline = snap.config.calendar.deadline(now, limit);
        let mut state =
            LoopState::received(route.unit, deadline, now).map_err(ValidationError::from)?;
        // A property repair is dispatched by its routing: the property company assesses
        // and takes it on at once (the one-tap form goes straight to the people who fix).
        let dispatched = channel == Channel::PropertyRepair;
        if dispatched {
            let owner = Actor::Unit(route.unit);
            state = state
                .apply(&Command::Assess { deadline }, owner, now)
                .and_then(|s| {
                    s.apply(
                        &Command::Assign {
                            unit: route.unit,
                            deadline,
                        },
                        owner,
                        now,
                    )
                })
                .map_err(ValidationError::from)?;
        }
        let outcome = DemandOutcome::from_loop(&state, now, deadline, deadline, None);
        let counted_bits = RateCounts::of(&outcome, now)
            .to_bits()
            .expect("one demand counts 0 or 1");
        let timer = plan_timer(
            &snap.config,
            &TimerFacts {
                status: state.status,
                deadline,
                step_at: now,
                warned: false,
                overdue: false,
                escalation_level: 0,
                escalation_len: route.escalation.len(),
                outcome: &outcome,
            },
            now,
        );
        let token = random_token("", 16);
        let d = NewDemand {
            region: place.region.clone(),
            kind,
            category: category.code.clone(),
            urgency,
            channel,
            title,
            description,
            place_id: place.id,
            place_path: place.path.clone(),
            lat: i.lat,
            lon: i.lon,
            address,
            attributes: i.attributes,
            reporter_account_id: by.account_id,
            reporter_name,
            reporter_phone,
            token_hash: PiiKey::token_hash(&token),
            status: state.status,
            owner_id: route.unit,
            handler_id: state.handler,
            deadline,
            response_deadline: deadline,
            handling_deadline: deadline,
            timer_at: timer.map(|t| t.0),
            timer_kind: timer.map(|t| t.1.to_string()),
            counted_bits,
            received_at: now,
            visit_id: i.visit_id,
            photos,
            event: NewEvent {
                actor: by.actor.clone(),
                actor_name: by.name.clone(),
                action: "submit".into(),
                unit_id: Some(route.unit),
                note: Some(if dispatched {
                    format!("{} · {} · 直接派单", channel.label_zh(), kind.label_zh())
                } else {
                    format!("{} · {}", channel.label_zh(), kind.label_zh())
                }),
            },
        };
        let owner_name = snap
            .unit_names
            .get(&route.unit)
            .cloned()
            .unwrap_or_default();
        let submitted = Submitted {
            id: 0,
            tracking_token: token,
            status: state.status,
            category: category.code,
            owner_id: route.unit,
            owner_name,
            place_id: place.id,
            place_name: place.name,
            deadline,
            received_at: now,
        };
        Ok((d, submitted))
    }

    /// A unit's step on demand `id`.
    pub async fn act(&self, id: i64, by: StepBy, action: Action) -> Result<Demand, StoreError> {
        let snap = self.snapshot();
        let now = self.now();
        if let Action::Assign { unit, .. } | Action::Transfer { unit, .. } = &action {
            if self.store.org_name(*unit).await?.is_none() {
                return Err(invalid(
                    "unit",
                    "unknown_unit",
                    format!("unknown unit {unit}"),
                ));
            }
        }
        if let Action::Merge { into, .. } = &action {
            let target =
                self.store.demand(*into).await.map_err(|_| {
                    invalid("into", "unknown_demand", format!("unknown demand {into}"))
                })?;
            if target.id == id || target.status == Status::Merged {
                return Err(invalid(
                    "into",
                    "invalid_merge",
                    "merge into another demand that is not itself merged",
                ));
            }
        }
        let d = self
            .store
            .demand_step(id, move |d| decide_step(&snap, d, &by, &action, now))
            .await?;
        self.announce(&d);
        Ok(d)
    }

    /// The reporter rates the answer.
    pub async fn rate(
        &self,
        id: i64,
        actor: String,
        rating: Rating,
        comment: Option<String>,
    ) -> Result<Demand, StoreError> {
        let snap = self.snapshot();
        let now = self.now();
        let comment = comment
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| intake::text("comment", c, 1000))
            .transpose()?;
        let d = self
            .store
            .demand_step(id, move |d| {
                let state = loop_state(d);
                let rework = (rating == Rating::Unsatisfied).then(|| {
                    let limit = snap.config.policy.limit(&d.category, d.urgency);
                    snap.config.calendar.deadline(now, limit)
                });
                let cmd = Command::Rate {
                    rating,
                    rework_deadline: rework,
                };
                let next_state = state
                    .apply(&cmd, Actor::Reporter, now)
                    .map_err(ValidationError::from)?;
                let mut next = d.clone();
                absorb(&mut next, &next_state, now);
                let note = match comment {
                    Some(c) => format!("{} · {c}", rating.label_zh()),
                    None => rating.label_zh().to_string(),
                };
                let mut notices = vec![];
                if rating == Rating::Unsatisfied {
                    if let Some(h) = next.handler_id {
                        notices.push(NewNotice {
                            unit_id: Some(h),
                            account_id: None,
                            kind: "reopened".into(),
                        });
                    }
                }
                finish(&snap, &mut next, now);
                Ok(Step {
                    at: now,
                    next,
                    event: Some(NewEvent {
                        actor: actor.clone(),
                        actor_name: "反映人".into(),
                        action: if rating == Rating::Unsatisfied {
                            "rate_reopen".into()
                        } else {
                            "rate".into()
                        },
                        unit_id: None,
                        note: Some(note),
                    }),
                    notices,
                })
            })
            .await?;
        self.announce(&d);
        Ok(d)
    }

    /// Runs every timer due at the desk's clock: warnings, overdue flags, escalation,
    /// rating reminders, closing unrated answers, and rate re-evaluation. Returns how
    /// many demands it looked at.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let mut done = 0;
        loop {
            let due = self.store.due_demands(now, 200).await?;
            if due.is_empty() {
                return Ok(done);
            }
            let n = due.len();
            for id in due {
                let snap = self.snapshot();
                match self
                    .store
                    .demand_step(id, move |d| timer_step(&snap, d, now))
                    .await
                {
                    Ok(d) => self.announce(&d),
                    // Someone acted on it meanwhile; the next tick sees the new timer.
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
                done += 1;
            }
            if n < 200 {
                return Ok(done);
            }
        }
    }

    /// The tracking token's demand, for the reporter's public page.
    pub async fn by_token(&self, token: &str) -> Result<Option<Demand>, StoreError> {
        if token.is_empty()
            || token.len() > 64
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Ok(None);
        }
        self.store.demand_by_token(&PiiKey::token_hash(token)).await
    }
}

/// The loop state machine's view of a stored demand.
pub fn loop_state(d: &Demand) -> LoopState {
    LoopState {
        status: d.status,
        owner: d.owner_id,
        handler: d.handler_id,
        transfer_to: d.transfer_to,
        deadline: d.deadline,
        rating: d.rating,
        reopened: u32::try_from(d.reopened).unwrap_or(u32::MAX),
    }
}

/// Copies the state machine's decision onto the stored demand.
fn absorb(next: &mut Demand, s: &LoopState, now: DateTime<Utc>) {
    if s.deadline != next.deadline || s.status != next.status {
        next.step_at = now;
        next.warned = false;
    }
    if s.deadline > now {
        next.overdue = false;
    }
    if matches!(s.status, Status::InProgress | Status::Answered) && next.first_response_at.is_none()
    {
        next.first_response_at = Some(now);
    }
    if s.status.is_terminal() {
        next.closed_at = Some(now);
    }
    next.status = s.status;
    next.owner_id = s.owner;
    next.handler_id = s.handler;
    next.transfer_to = s.transfer_to;
    next.deadline = s.deadline;
    next.rating = s.rating;
    next.reopened = i64::from(s.reopened);
}

/// Recomputes the rate contribution and the timer after a change.
fn finish(snap: &Snapshot, next: &mut Demand, now: DateTime<Utc>) {
    let o = outcome(next);
    next.counted_unit = next.owner_id;
    next.counted_bits = RateCounts::of(&o, now)
        .to_bits()
        .expect("one demand counts 0 or 1");
    let escalation_len = escalation_chain(snap, next).len();
    let t = plan_timer(
        &snap.config,
        &TimerFacts {
            status: next.status,
            deadline: next.deadline,
            step_at: next.step_at,
            warned: next.warned,
            overdue: next.overdue,
            escalation_level: usize::try_from(next.escalation_level).unwrap_or(0),
            escalation_len,
            outcome: &o,
        },
        now,
    );
    // A timer is never due at once again: whatever is due now was just handled, so a
    // planning slip can cost a second's delay but never a busy loop.
    let t = t.map(|(at, kind)| (at.max(now + Duration::seconds(1)), kind));
    next.timer_at = t.map(|t| t.0);
    next.timer_kind = t.map(|t| t.1.to_string());
}

/// The units above a demand's routing rule, nearest first (community → street →
/// district → league/city): who is told, level by level, while it stays overdue.
fn escalation_chain(snap: &Snapshot, d: &Demand) -> Vec<UnitId> {
    snap.routing
        .route(&d.category, &d.place_path)
        .map(|r| r.escalation)
        .unwrap_or_default()
}

/// When an overdue demand escalates to the level after `level`: at the deadline for
/// the first, then one escalation step (in working days) later for each further one.
fn escalation_at(cfg: &LoopConfig, deadline: DateTime<Utc>, level: usize) -> DateTime<Utc> {
    let days = cfg
        .escalation_step
        .amount()
        .saturating_mul(u32::try_from(level).unwrap_or(u32::MAX));
    match TimeLimit::working_days(days) {
        Ok(after) if days > 0 => cfg.calendar.deadline(deadline, after),
        _ => deadline,
    }
}

fn outcome(d: &Demand) -> DemandOutcome {
    DemandOutcome {
        received_at: d.received_at,
        response_deadline: d.response_deadline,
        handling_deadline: d.handling_deadline,
        first_response_at: d.first_response_at,
        status: d.status,
        rating: d.rating,
    }
}

struct TimerFacts<'a> {
    status: Status,
    deadline: DateTime<Utc>,
    step_at: DateTime<Utc>,
    warned: bool,
    overdue: bool,
    escalation_level: usize,
    escalation_len: usize,
    outcome: &'a DemandOutcome,
}

/// When the scheduler must next look at a demand, and why: the warning before the
/// deadline (a rating reminder once answered), the deadline itself, the next
/// escalation while overdue, or the instant its rates change — whichever is first.
fn plan_timer(
    cfg: &LoopConfig,
    f: &TimerFacts,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, &'static str)> {
    // The fractions are checked when the configuration is built, so `warning_at`
    // cannot fail here; if it did, the deadline itself is the next look.
    let loop_timer = if f.status.is_terminal() {
        None
    } else if f.status == Status::Answered {
        match warning_at(f.step_at, f.deadline, cfg.remind_fraction) {
            Ok(remind) if !f.warned && remind > now => Some((remind, "remind_rating")),
            _ => Some((f.deadline, "close_unrated")),
        }
    } else if !f.overdue {
        match warning_at(f.step_at, f.deadline, cfg.warn_fraction) {
            Ok(warn) if !f.warned && warn > now => Some((warn, "warn")),
            _ => Some((f.deadline, "overdue")),
        }
    } else if f.escalation_level < f.escalation_len {
        Some((
            escalation_at(cfg, f.deadline, f.escalation_level),
            "escalate",
        ))
    } else {
        None
    };
    let rates = f.outcome.next_change(now).map(|t| (t, "rates"));
    match (loop_timer, rates) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// What a due timer does to a demand at `now`.
fn timer_step(snap: &Snapshot, d: &Demand, now: DateTime<Utc>) -> Result<Step, StoreError> {
    let cfg = &snap.config;
    let mut next = d.clone();
    let mut event = None;
    let mut notices = Vec::new();
    let system = |action: &str, note: String, unit: Option<i64>| NewEvent {
        actor: "system:scheduler".into(),
        actor_name: "系统".into(),
        action: action.into(),
        unit_id: unit,
        note: Some(note),
    };
    if d.status == Status::Answered {
        if lianxin_domain::calendar::is_overdue(now, d.deadline) {
            let state = loop_state(d)
                .apply(&Command::CloseUnrated, Actor::Unit(d.owner_id), now)
                .map_err(ValidationError::from)?;
            absorb(&mut next, &state, now);
            event = Some(system(
                "close_unrated",
                "评价期满未评价,自动办结".into(),
                None,
            ));
        } else if !d.warned
            && warning_at(d.step_at, d.deadline, cfg.remind_fraction).is_ok_and(|t| t <= now)
        {
            next.warned = true;
            if let Some(a) = d.reporter_account_id {
                notices.push(NewNotice {
                    unit_id: None,
                    account_id: Some(a),
                    kind: "remind_rating".into(),
                });
            }
            event = Some(system("remind_rating", "提醒反映人评价".into(), None));
        }
    } else if !d.status.is_terminal() {
        let chain = escalation_chain(snap, d);
        let level = usize::try_from(d.escalation_level).unwrap_or(0);
        if lianxin_domain::calendar::is_overdue(now, d.deadline) {
            let escalate_due = escalation_at(cfg, d.deadline, level) <= now;
            if !d.overdue {
                next.overdue = true;
                next.warned = true;
                notices.push(NewNotice {
                    unit_id: Some(d.owner_id),
                    account_id: None,
                    kind: "overdue".into(),
                });
            }
            if escalate_due && level < chain.len() {
                let sup = chain[level];
                next.supervisor_id = Some(sup);
                next.escalation_level = i64::try_from(level + 1).unwrap_or(i64::MAX);
                notices.push(NewNotice {
                    unit_id: Some(sup),
                    account_id: None,
                    kind: "escalated".into(),
                });
                event = Some(system(
                    "escalate",
                    format!("超时未办结,第{}级督办", level + 1),
                    Some(sup),
                ));
            } else if !d.overdue {
                event = Some(system("overdue", "已超时".into(), None));
            }
        } else if !d.warned
            && warning_at(d.step_at, d.deadline, cfg.warn_fraction).is_ok_and(|t| t <= now)
        {
            next.warned = true;
            let unit = d.handler_id.unwrap_or(d.owner_id);
            notices.push(NewNotice {
                unit_id: Some(unit),
                account_id: None,
                kind: "warning".into(),
            });
            event = Some(system("warn", "即将超时预警".into(), Some(unit)));
        }
    }
    finish(snap, &mut next, now);
    Ok(Step {
        at: now,
        next,
        event,
        notices,
    })
}

/// Decides a unit's step: which unit the caller acts for, the deadline, the new state.
fn decide_step(
    snap: &Snapshot,
    d: &Demand,
    by: &StepBy,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Step, StoreError> {
    let cfg = &snap.config;
    let state = loop_state(d);
    // The caller acts for the unit the step belongs to, if that unit is theirs; if not,
    // the state machine refuses it as "not yours".
    let unit_for = |unit: Option<i64>| match unit {
        Some(u) if by.acts_for(u) => Actor::Unit(u),
        _ => Actor::Unit(-1),
    };
    let as_owner = unit_for(Some(d.owner_id));
    let as_handler = unit_for(d.handler_id);
    let as_target = unit_for(d.transfer_to);
    // A deadline the caller gave must be in the future; a computed one falls back to
    // one step from now when the time limit has already run out.
    let fallback = cfg.calendar.deadline(now, cfg.escalation_step);
    let keep_or = |given: &Option<DateTime<Utc>>, computed: DateTime<Utc>| -> DateTime<Utc> {
        given.unwrap_or(if computed > now { computed } else { fallback })
    };
    let reason = |r: &str| intake::text("reason", r, 1000);
    let note_text = |n: &Option<String>| -> Result<Option<String>, ValidationError> {
        n.as_deref()
            .filter(|n| !n.trim().is_empty())
            .map(|n| intake::text("note", n, 1000))
            .transpose()
    };
    let mut next = d.clone();
    let mut notices = Vec::new();
    let (cmd, actor, note, unit) = match action {
        Action::Assess {
            urgency,
            category,
            deadline,
            note,
        } => {
            if let Some(c) = category {
                let c = snap
                    .categories
                    .get(c.trim())
                    .filter(|c| c.active)
                    .ok_or_else(|| {
                        invalid(
                            "category",
                            "unknown_category",
                            format!("unknown category {c:?}"),
                        )
                    })?;
                next.category = c.code.clone();
            }
            if let Some(u) = urgency {
                next.urgency = *u;
            }
            if next.urgency != d.urgency || next.category != d.category {
                let limit = cfg.policy.limit(&next.category, next.urgency);
                next.handling_deadline = cfg.calendar.deadline(d.received_at, limit);
                next.response_deadline = next.handling_deadline;
            }
            let dl = keep_or(deadline, next.handling_deadline);
            let mut n = note_text(note)?.unwrap_or_default();
            if next.urgency != d.urgency {
                n = format!("{} {n}", next.urgency.label_zh())
                    .trim()
                    .to_string();
            }
            (
                Command::Assess { deadline: dl },
                as_owner,
                Some(n).filter(|n| !n.is_empty()),
                None,
            )
        }
        Action::Assign {
            unit,
            deadline,
            note,
        } => {
            notices.push(NewNotice {
                unit_id: Some(*unit),
                account_id: None,
                kind: "assigned".into(),
            });
            let dl = keep_or(deadline, d.handling_deadline);
            (
                Command::Assign {
                    unit: *unit,
                    deadline: dl,
                },
                as_owner,
                note_text(note)?,
                Some(*unit),
            )
        }
        Action::Start { note } => (Command::Start, as_handler, note_text(note)?, d.handler_id),
        Action::Answer { text } => {
            let text = intake::text("answer", text, intake::MAX_DESCRIPTION_CHARS)?;
            next.answer = Some(text.clone());
            if let Some(a) = d.reporter_account_id {
                notices.push(NewNotice {
                    unit_id: None,
                    account_id: Some(a),
                    kind: "answered".into(),
                });
            }
            let rating_deadline = cfg.calendar.deadline(now, cfg.rating_window);
            (
                Command::Answer { rating_deadline },
                as_handler,
                Some(text),
                d.handler_id,
            )
        }
        Action::Return {
            reason: r,
            deadline,
        } => {
            let r = reason(r)?;
            notices.push(NewNotice {
                unit_id: Some(d.owner_id),
                account_id: None,
                kind: "returned".into(),
            });
            let dl = keep_or(deadline, d.handling_deadline);
            (
                Command::Return { deadline: dl },
                as_handler,
                Some(r),
                Some(d.owner_id),
            )
        }
        Action::Transfer { unit, reason: r } => {
            let r = reason(r)?;
            notices.push(NewNotice {
                unit_id: Some(*unit),
                account_id: None,
                kind: "transfer_offered".into(),
            });
            (
                Command::Transfer { to: *unit },
                as_owner,
                Some(r),
                Some(*unit),
            )
        }
        Action::AcceptTransfer { deadline, note } => {
            let dl = keep_or(deadline, d.handling_deadline);
            (
                Command::AcceptTransfer { deadline: dl },
                as_target,
                note_text(note)?,
                d.transfer_to,
            )
        }
        Action::DeclineTransfer { reason: r } => {
            let r = reason(r)?;
            notices.push(NewNotice {
                unit_id: Some(d.owner_id),
                account_id: None,
                kind: "transfer_declined".into(),
            });
            (Command::DeclineTransfer, as_target, Some(r), d.transfer_to)
        }
        Action::Merge { into, note } => {
            next.merged_into = Some(*into);
            let n = note_text(note)?.unwrap_or_default();
            (
                Command::Merge,
                as_owner,
                Some(format!("并入 #{into} {n}").trim().to_string()),
                None,
            )
        }
        Action::Reject { reason: r } => (Command::Reject, as_owner, Some(reason(r)?), None),
        Action::CloseUnrated => (Command::CloseUnrated, as_owner, None, None),
    };
    let next_state = state
        .apply(&cmd, actor, now)
        .map_err(ValidationError::from)?;
    absorb(&mut next, &next_state, now);
    finish(snap, &mut next, now);
    Ok(Step {
        at: now,
        next,
        event: Some(NewEvent {
            actor: by.actor.clone(),
            actor_name: by.name.clone(),
            action: action.name().into(),
            unit_id: unit,
            note,
        }),
        notices,
    })
}
