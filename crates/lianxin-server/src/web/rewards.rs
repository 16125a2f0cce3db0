//! The points pages (以积分享兑换):
//! - `/rewards` is the rider's phone: the balance in large type, this quarter's
//!   redemption, the history with the reason of every entry, and the catalogue of every
//!   organisation with a redeem button per item (`POST /rewards/redeem`).
//! - `/rewards/admin` is the organisation's desk: rules (every version) and a form for
//!   a new version, the issuing organisation, the catalogue with stock, restocking,
//!   recording one award, the latest awards, points per day over 30 days, the ledger's
//!   totals (debits = credits per asset) and CSV exports.
//! - `/rewards/honours` is the year's ranking per category by points *earned*, with the
//!   shortlist an official confirms; `/rewards/certificates/{no}` prints a certificate.
//!
//! A rider sees only their own ledger (`person:{account.person_id}`). No page shows a
//! phone or ID number; the desk pages show names. Refusals (out of stock, not enough
//! points, already redeemed this quarter, outside the window …) are 4xx pages with
//! plain words, never a 500.

use super::{field, page_caller, page_error, permitted_caller, read_form, Frame};
use crate::auth::{self, Caller};
use crate::chart::bar_chart;
use crate::extract::QueryParams;
use crate::i18n::{self, Lang};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use lianxin_domain::calendar::{local_day, SHANGHAI};
use lianxin_domain::community::Quarter;
use lianxin_domain::points::{
    quarter_of, Account, Asset, Cap, Multipliers, Period, Quality, RuleDraft, Window,
};
use lianxin_domain::role::{DataScope, Permission, Role};
use lianxin_domain::ValidationError;
use lianxin_store::points::{AwardRequest, NewItem, Transfer};
use lianxin_store::points_honours::SHORTLIST;
use lianxin_store::StoreError;
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// This area's templates, registered with the others.
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        "rewards_rider.html",
        include_str!("../../templates/rewards_rider.html"),
    ),
    (
        "rewards_admin.html",
        include_str!("../../templates/rewards_admin.html"),
    ),
    (
        "rewards_honours.html",
        include_str!("../../templates/rewards_honours.html"),
    ),
    (
        "rewards_certificate.html",
        include_str!("../../templates/rewards_certificate.html"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rewards", get(rider_page))
        .route("/rewards/redeem", post(redeem))
        .route("/rewards/admin", get(admin_page))
        .route("/rewards/admin/rules", post(add_rule))
        .route("/rewards/admin/issuer", post(set_issuer))
        .route("/rewards/admin/items", post(add_item))
        .route("/rewards/admin/restock", post(restock))
        .route("/rewards/admin/award", post(award))
        .route("/rewards/admin/awards.csv", get(awards_csv))
        .route("/rewards/admin/ledger.csv", get(ledger_csv))
        .route("/rewards/admin/honours.csv", get(honours_csv))
        .route("/rewards/honours", get(honours_page))
        .route("/rewards/honours/confirm", post(confirm_honours))
        .route(
            "/rewards/certificates/{certificate_no}",
            get(certificate_page),
        )
}

/// Form bodies are small.
const FORM_LIMIT: usize = 32 * 1024;
/// Latest awards listed on the desk page.
const LATEST_AWARDS: i64 = 30;
/// Days of the desk page's chart.
const CHART_DAYS: i64 = 30;
/// History lines on the rider's page (the rest is summarised).
const HISTORY_LINES: usize = 200;

fn tr(lang: Lang, key: &str) -> String {
    i18n::table(lang)
        .get(key)
        .map(|s| s.to_string())
        .unwrap_or_else(|| key.to_string())
}

/// The words for a code in the `prefix` family, or the code itself.
fn label(lang: Lang, prefix: &str, code: &str) -> String {
    let key = format!("{prefix}{code}");
    let text = tr(lang, &key);
    if text == key {
        code.to_string()
    } else {
        text
    }
}

fn rule_label(lang: Lang, code: &str) -> String {
    label(lang, "rw_rule_", code)
}

fn category_label(lang: Lang, code: &str) -> String {
    label(lang, "rw_cat_", code)
}

fn quality_label(lang: Lang, code: &str) -> String {
    label(lang, "rw_q_", code)
}

fn period_label(lang: Lang, p: Period) -> String {
    label(lang, "rw_period_", p.as_str())
}

fn parse_at(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A stored time as Shanghai `YYYY-MM-DD HH:MM`.
fn local_time(at: &str) -> String {
    parse_at(at)
        .map(|t| {
            t.with_timezone(&SHANGHAI)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| at.to_string())
}

/// A stored time as the Shanghai day.
fn local_date(at: &str) -> String {
    parse_at(at)
        .map(|t| local_day(t).to_string())
        .unwrap_or_else(|| at.chars().take(10).collect())
}

/// A refusal shown above the page, with the status the page answers.
struct Problem {
    status: StatusCode,
    message: String,
}

fn problem_value(p: &Option<Problem>) -> Option<Value> {
    p.as_ref()
        .map(|p| context! { message => p.message.clone() })
}

fn with_status(mut resp: Response, problem: &Option<Problem>) -> Response {
    if let Some(p) = problem {
        if resp.status().is_success() {
            *resp.status_mut() = p.status;
        }
    }
    resp
}

/// The refusals a rider or an official meets, each with its own plain words.
#[cfg(test)]
const KNOWN_REFUSALS: &[&str] = &[
    "out_of_stock",
    "insufficient_points",
    "already_redeemed_this_quarter",
    "outside_window",
    "not_on_shortlist",
    "empty_shortlist",
    "invalid_title",
    "invalid_rule_code",
    "invalid_points",
    "invalid_multiplier",
    "invalid_cap",
    "invalid_window",
    "invalid_cost",
    "invalid_name",
    "invalid_units",
    "invalid_quality",
    "invalid_event_ref",
    "invalid_year",
    "unknown_org",
    "unknown_rule",
    "unknown_person",
    "invalid_id",
    "invalid_number",
    "invalid_date",
    "not_linked",
];

fn refusal(lang: Lang, code: &str, fallback: &str) -> Problem {
    let status = match code {
        "out_of_stock"
        | "insufficient_points"
        | "already_redeemed_this_quarter"
        | "outside_window" => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let key = format!("rw_err_{code}");
    let text = tr(lang, &key);
    let message = if text != key {
        text
    } else {
        format!("{}{fallback}", tr(lang, "rw_err_prefix"))
    };
    Problem { status, message }
}

fn from_validation(lang: Lang, v: &ValidationError) -> Problem {
    refusal(lang, v.code, &v.message)
}

/// A store error as a problem for the page; `None` for a failure of the server itself
/// (logged here, shown as the error page).
fn from_store(lang: Lang, e: StoreError) -> Option<Problem> {
    match e {
        StoreError::Invalid(v) => Some(from_validation(lang, &v)),
        StoreError::NotFound { .. } => Some(Problem {
            status: StatusCode::NOT_FOUND,
            message: tr(lang, "rw_err_not_found"),
        }),
        StoreError::Conflict { field, message } => Some(Problem {
            status: StatusCode::CONFLICT,
            message: match field.as_str() {
                "category" => tr(lang, "rw_err_already_confirmed"),
                "award_id" => tr(lang, "rw_err_award_conflict"),
                _ => format!("{}{message}", tr(lang, "rw_err_prefix")),
            },
        }),
        other => {
            tracing::error!(error = %other, "rewards page");
            None
        }
    }
}

fn server_failure(state: &AppState, frame: &Frame) -> Response {
    page_error(state, frame, StatusCode::INTERNAL_SERVER_ERROR)
}

/// A posted form with a valid CSRF token from a signed-in caller (any role; each
/// handler checks what the role may do).
async fn posted(
    state: &AppState,
    req: Request,
    here: &str,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    let headers = req.headers().clone();
    let caller = page_caller(state, &headers).await?;
    let frame = Frame::new(state, &headers, here, Some(&caller));
    let Some(form) = read_form(req, FORM_LIMIT).await else {
        return Err(page_error(state, &frame, StatusCode::BAD_REQUEST));
    };
    if frame.csrf.is_empty() || !auth::same(field(&form, "csrf"), &frame.csrf) {
        return Err(page_error(state, &frame, StatusCode::FORBIDDEN));
    }
    Ok((caller, frame, form))
}

/// A posted desk form from a caller allowed `permission`.
async fn posted_desk(
    state: &AppState,
    req: Request,
    permission: Permission,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    super::posted_form(state, req, "/rewards/admin", permission, FORM_LIMIT).await
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn parse_i64(form: &[(String, String)], name: &str) -> Result<i64, ValidationError> {
    field(form, name).trim().parse::<i64>().map_err(|_| {
        ValidationError::new(
            name,
            "invalid_number",
            format!("{name} must be a whole number"),
        )
    })
}

async fn org_names(state: &AppState, ids: Vec<i64>) -> HashMap<i64, String> {
    let all = DataScope::everything();
    let mut out = HashMap::new();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        let name = match state.store.org(id, &all).await {
            Ok(o) => o.name,
            Err(_) => format!("#{id}"),
        };
        out.insert(id, name);
    }
    out
}

/// The days of the current quarter an item's window covers, as dates.
fn window_dates(window: Window, now: DateTime<Utc>) -> (String, String) {
    let q = Quarter::containing(local_day(now));
    let first = q.first_day() + Duration::days(i64::from(window.first) - 1);
    let last = (q.first_day() + Duration::days(i64::from(window.last) - 1)).min(q.last_day());
    (
        first.format("%m-%d").to_string(),
        last.format("%m-%d").to_string(),
    )
}

// ----- the rider's page -----

#[derive(Deserialize)]
struct RiderQuery {
    done: Option<String>,
}

async fn rider_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<RiderQuery>, crate::error::ApiError>,
) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, "/rewards", Some(&caller));
    if caller.role() != Role::Rider {
        // The desk roles have their own page; everybody else has none.
        if caller.role().allows(Permission::ReadRewards) {
            return see_other("/rewards/admin");
        }
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let done = q.ok().and_then(|QueryParams(q)| q.done);
    rider_view(&state, &caller, &frame, None, done.as_deref()).await
}

async fn rider_view(
    state: &AppState,
    caller: &Caller,
    frame: &Frame,
    problem: Option<Problem>,
    done: Option<&str>,
) -> Response {
    let lang = frame.lang;
    let notice = done
        .filter(|d| *d == "redeemed")
        .map(|d| tr(lang, &format!("rw_done_{d}")));
    let Some(person) = caller.account.person_id else {
        let resp = frame.render(
            state,
            "rewards_rider.html",
            context! { linked => false, problem => problem_value(&problem) },
        );
        return with_status(resp, &problem);
    };
    let now = Utc::now();
    let loaded = async {
        let balance = state
            .store
            .points_balance(Account::Person(person), Asset::Points)
            .await?;
        let history = state.store.points_history(person).await?;
        let awards = state.store.points_awards(Some(person), 100_000).await?;
        let redemptions = state.store.points_redemptions_of(person).await?;
        let items = state.store.points_all_items().await?;
        Ok::<_, StoreError>((balance, history, awards, redemptions, items))
    }
    .await;
    let (balance, history, awards, redemptions, items) = match loaded {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "rewards page");
            return server_failure(state, frame);
        }
    };
    let (year, quarter) = quarter_of(now);
    let this_quarter = redemptions
        .iter()
        .find(|r| r.year == i64::from(year) && r.quarter == i64::from(quarter));
    let awards: HashMap<&str, _> = awards.iter().map(|a| (a.award_id.as_str(), a)).collect();
    let redeemed: HashMap<i64, _> = redemptions.iter().map(|r| (r.id, r)).collect();
    let me = Account::Person(person);
    let mut lines: Vec<Value> = history
        .iter()
        .filter(|t| t.asset == Asset::Points)
        .rev()
        .map(|t| history_line(lang, t, me, &awards, &redeemed))
        .collect();
    let total_lines = lines.len();
    lines.truncate(HISTORY_LINES);
    let orgs = org_names(state, items.iter().map(|i| i.org_id).collect()).await;
    let catalogue: Vec<Value> = items
        .iter()
        .map(|i| {
            let why_not = if this_quarter.is_some() {
                Some("already_redeemed_this_quarter")
            } else if !i.window.contains(now) {
                Some("outside_window")
            } else if i.stock < 1 {
                Some("out_of_stock")
            } else if balance < i.cost {
                Some("insufficient_points")
            } else {
                None
            };
            let (from, until) = window_dates(i.window, now);
            context! {
                id => i.id,
                name => i.name.clone(),
                org => orgs.get(&i.org_id).cloned().unwrap_or_default(),
                cost => i.cost,
                stock => i.stock,
                window_first => i.window.first,
                window_last => i.window.last,
                window_from => from,
                window_until => until,
                redeemable => why_not.is_none(),
                why_not => why_not.map(|c| tr(lang, &format!("rw_why_{c}"))),
                why_code => why_not.unwrap_or(""),
            }
        })
        .collect();
    let quarter_label = format!("{year}Q{quarter}");
    let resp = frame.render(
        state,
        "rewards_rider.html",
        context! {
            linked => true,
            balance,
            quarter_label,
            used => this_quarter.map(|r| context! {
                item => r.item_name.clone(),
                cost => r.cost,
                at => local_date(&r.at),
            }),
            history => lines,
            more => total_lines > HISTORY_LINES,
            total_lines,
            catalogue,
            notice,
            problem => problem_value(&problem),
        },
    );
    with_status(resp, &problem)
}

fn history_line(
    lang: Lang,
    t: &Transfer,
    me: Account,
    awards: &HashMap<&str, &lianxin_store::points_honours::AwardRow>,
    redemptions: &HashMap<i64, &lianxin_store::points_honours::RedemptionRow>,
) -> Value {
    let delta = t.delta_for(me);
    let mut at = t.created_at.clone();
    let (kind, text, detail) = match t.reason.as_str() {
        "award" => {
            let a = t.award_id.as_deref().and_then(|id| awards.get(id));
            match a {
                Some(a) => {
                    at = a.at.clone();
                    (
                        "award",
                        rule_label(lang, &a.rule_code),
                        format!(
                            "{} · {} · {}",
                            quality_label(lang, &a.quality),
                            a.event_ref,
                            tr(lang, "rw_rule_version").replace("{}", &a.rule_version.to_string())
                        ),
                    )
                }
                None => ("award", tr(lang, "rw_reason_award"), String::new()),
            }
        }
        "redemption" => {
            let r = t.redemption_id.and_then(|id| redemptions.get(&id));
            if let Some(r) = r {
                at = r.at.clone();
            }
            (
                "redemption",
                tr(lang, "rw_reason_redemption"),
                r.map(|r| format!("{} · {}Q{}", r.item_name, r.year, r.quarter))
                    .unwrap_or_default(),
            )
        }
        "correction" => (
            "correction",
            tr(lang, "rw_reason_correction"),
            t.refs
                .get("reason")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
        ),
        other => ("other", other.to_string(), String::new()),
    };
    context! {
        id => t.id,
        kind,
        text,
        detail,
        at => local_time(&at),
        delta,
        signed => if delta > 0 { format!("+{delta}") } else { delta.to_string() },
    }
}

async fn redeem(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted(&state, req, "/rewards").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if caller.role() != Role::Rider {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let lang = frame.lang;
    let Some(person) = caller.account.person_id else {
        let p = refusal(lang, "not_linked", "");
        return rider_view(&state, &caller, &frame, Some(p), None).await;
    };
    let item = match parse_i64(&form, "item_id") {
        Ok(id) => id,
        Err(v) => {
            return rider_view(
                &state,
                &caller,
                &frame,
                Some(from_validation(lang, &v)),
                None,
            )
            .await
        }
    };
    match state
        .store
        .points_redeem(&caller.actor(), person, item, Utc::now())
        .await
    {
        Ok(_) => see_other("/rewards?done=redeemed"),
        Err(e) => match from_store(lang, e) {
            Some(p) => rider_view(&state, &caller, &frame, Some(p), None).await,
            None => server_failure(&state, &frame),
        },
    }
}

// ----- the organisation's desk -----

#[derive(Deserialize)]
struct AdminQuery {
    done: Option<String>,
}

const DONE_CODES: &[&str] = &["rule", "issuer", "item", "restock", "award", "award_capped"];

async fn admin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<AdminQuery>, crate::error::ApiError>,
) -> Response {
    let (caller, frame) =
        match permitted_caller(&state, &headers, "/rewards/admin", Permission::ReadRewards).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let done = q.ok().and_then(|QueryParams(q)| q.done);
    admin_view(&state, &caller, &frame, None, done.as_deref()).await
}

async fn admin_view(
    state: &AppState,
    caller: &Caller,
    frame: &Frame,
    problem: Option<Problem>,
    done: Option<&str>,
) -> Response {
    let lang = frame.lang;
    let role = caller.role();
    let manage = role.allows(Permission::ManageRewards);
    let award = role.allows(Permission::AwardPoints);
    let notice = done
        .filter(|d| DONE_CODES.contains(d))
        .map(|d| tr(lang, &format!("rw_done_{d}")));
    let today = local_day(Utc::now());
    let loaded = async {
        let rules = state.store.points_rules().await?;
        let issuer = state.store.points_issuer().await?;
        let items = state.store.points_all_items().await?;
        let latest = state.store.points_awards(None, LATEST_AWARDS).await?;
        let days = state
            .store
            .points_award_days(
                today - Duration::days(CHART_DAYS - 1),
                today + Duration::days(1),
            )
            .await?;
        let totals = state.store.points_totals().await?;
        let balances = state.store.points_balances().await?;
        let orgs = if manage || award {
            state
                .store
                .search_orgs("", None, &caller.account.scope, 500)
                .await?
        } else {
            Vec::new()
        };
        Ok::<_, StoreError>((rules, issuer, items, latest, days, totals, balances, orgs))
    }
    .await;
    let (rules, issuer, items, latest, days, totals, balances, orgs) = match loaded {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "rewards desk");
            return server_failure(state, frame);
        }
    };
    let org_ids: Vec<i64> = items
        .iter()
        .map(|i| i.org_id)
        .chain(issuer)
        .chain(latest.iter().map(|a| a.org_id))
        .collect();
    let names = org_names(state, org_ids).await;
    let now = Utc::now();
    let rule_rows: Vec<Value> = rules
        .iter()
        .map(|r| {
            let in_force = lianxin_domain::points::rule_in_force(
                &rules.iter().filter(|x| x.code == r.code).cloned().collect::<Vec<_>>(),
                now,
            )
            .map(|x| x.version)
                == Some(r.version);
            context! {
                code => r.code.clone(),
                label => rule_label(lang, &r.code),
                version => r.version,
                category => category_label(lang, &r.category),
                points => r.points,
                basic => r.multipliers.basic,
                good => r.multipliers.good,
                excellent => r.multipliers.excellent,
                cap => r.cap.map(|c| format!("{} {} {}", c.points, tr(lang, "rw_points_per"), period_label(lang, c.period))),
                valid_from => local_time(&lianxin_store::demands::ts(r.valid_from)),
                in_force,
            }
        })
        .collect();
    let mut codes: Vec<&str> = rules.iter().map(|r| r.code.as_str()).collect();
    codes.dedup();
    let rule_codes: Vec<Value> = codes
        .iter()
        .map(|c| context! { code => c, label => rule_label(lang, c) })
        .collect();
    let catalogue: Vec<Value> = items
        .iter()
        .map(|i| {
            let (from, until) = window_dates(i.window, now);
            context! {
                id => i.id, name => i.name.clone(),
                org => names.get(&i.org_id).cloned().unwrap_or_default(),
                cost => i.cost, stock => i.stock,
                window_first => i.window.first, window_last => i.window.last,
                window_from => from, window_until => until,
                open_today => i.window.contains(now),
            }
        })
        .collect();
    let item_names: HashMap<i64, String> = items.iter().map(|i| (i.id, i.name.clone())).collect();
    let latest_rows: Vec<Value> = latest
        .iter()
        .map(|a| {
            context! {
                at => local_time(&a.at), name => a.name.clone(), person_id => a.person_id,
                rule => rule_label(lang, &a.rule_code), version => a.rule_version,
                quality => quality_label(lang, &a.quality), event_ref => a.event_ref.clone(),
                requested => a.requested, points => a.points,
                capped => a.points < a.requested,
                org => names.get(&a.org_id).cloned().unwrap_or_default(),
            }
        })
        .collect();
    let mut per_day: BTreeMap<String, i64> = (0..CHART_DAYS)
        .map(|d| ((today - Duration::days(CHART_DAYS - 1 - d)).to_string(), 0))
        .collect();
    for d in &days {
        if let Some(v) = per_day.get_mut(&d.day) {
            *v += d.points;
        }
    }
    let month_points: i64 = per_day.values().sum();
    let month_awards: i64 = days.iter().map(|d| d.awards).sum();
    let bars: Vec<(String, i64)> = per_day
        .iter()
        .map(|(day, v)| (day.get(5..).unwrap_or(day).to_string(), *v))
        .collect();
    let chart = Value::from_safe_string(bar_chart(&tr(lang, "rw_chart_title"), &bars));
    let total_rows: Vec<Value> = totals
        .iter()
        .map(|t| {
            let asset = match t.asset {
                Asset::Points => tr(lang, "rw_asset_points"),
                Asset::Item(id) => format!(
                    "{} · {}",
                    tr(lang, "rw_asset_item"),
                    item_names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| format!("#{id}"))
                ),
            };
            context! {
                code => t.asset.code(), asset, debits => t.debits, credits => t.credits,
                balances => t.balances, balanced => t.debits == t.credits && t.balances == 0,
            }
        })
        .collect();
    let balanced = totals
        .iter()
        .all(|t| t.debits == t.credits && t.balances == 0);
    // What the pools have put into circulation, and what has been spent.
    let issued: i64 = -balances
        .iter()
        .filter(|((account, asset), _)| {
            matches!(account, Account::Pool(_)) && *asset == Asset::Points
        })
        .map(|(_, b)| *b)
        .sum::<i64>();
    let redeemed = balances
        .get(&(Account::Sink, Asset::Points))
        .copied()
        .unwrap_or(0);
    let org_options: Vec<Value> = orgs
        .iter()
        .map(|o| context! { id => o.id, name => o.name.clone(), code => o.code.clone() })
        .collect();
    let categories = ["rider", "courier"]
        .iter()
        .map(|c| context! { code => c, label => category_label(lang, c) })
        .collect::<Vec<_>>();
    let task_types: Vec<Value> = lianxin_domain::points::TASK_TYPES
        .iter()
        .map(|c| context! { code => c, label => rule_label(lang, c) })
        .collect();
    let periods: Vec<Value> = [Period::Day, Period::Week, Period::Month, Period::Quarter]
        .iter()
        .map(|p| context! { code => p.as_str(), label => period_label(lang, *p) })
        .collect();
    let qualities: Vec<Value> = [Quality::Basic, Quality::Good, Quality::Excellent]
        .iter()
        .map(|q| context! { code => q.as_str(), label => quality_label(lang, q.as_str()) })
        .collect();
    let year = local_day(now).format("%Y").to_string();
    let resp = frame.render(
        state,
        "rewards_admin.html",
        context! {
            manage, award,
            rules => rule_rows, rule_codes, task_types, categories, periods, qualities,
            issuer => issuer.map(|id| context! { id, name => names.get(&id).cloned().unwrap_or_default() }),
            issuer_id => issuer.unwrap_or(0),
            catalogue, latest => latest_rows, chart,
            month_points, month_awards, issued, redeemed,
            totals => total_rows, balanced,
            orgs => org_options,
            today => today.to_string(),
            year,
            notice,
            problem => problem_value(&problem),
        },
    );
    with_status(resp, &problem)
}

/// Runs a desk form's store call and answers: a redirect with `done` on success, the
/// page again with the refusal otherwise.
async fn desk_outcome<T>(
    state: &AppState,
    caller: &Caller,
    frame: &Frame,
    result: Result<T, StoreError>,
    done: impl FnOnce(&T) -> &'static str,
) -> Response {
    match result {
        Ok(v) => see_other(&format!("/rewards/admin?done={}", done(&v))),
        Err(e) => match from_store(frame.lang, e) {
            Some(p) => admin_view(state, caller, frame, Some(p), None).await,
            None => server_failure(state, frame),
        },
    }
}

fn parse_rule(form: &[(String, String)]) -> Result<RuleDraft, ValidationError> {
    let pct = |name: &str, default: u32| -> Result<u32, ValidationError> {
        let raw = field(form, name).trim();
        if raw.is_empty() {
            return Ok(default);
        }
        raw.parse::<u32>().map_err(|_| {
            ValidationError::new(
                name,
                "invalid_multiplier",
                "a multiplier is a whole percentage",
            )
        })
    };
    let d = Multipliers::default();
    let cap = match field(form, "cap_period").trim() {
        "" => None,
        p => Some(Cap {
            period: Period::parse(p)?,
            points: field(form, "cap_points")
                .trim()
                .parse::<i64>()
                .map_err(|_| {
                    ValidationError::new(
                        "cap_points",
                        "invalid_cap",
                        "a cap is a whole number of points",
                    )
                })?,
        }),
    };
    let valid_from = match field(form, "valid_from").trim() {
        "" => Utc::now(),
        raw => {
            let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                ValidationError::new(
                    "valid_from",
                    "invalid_date",
                    "valid from is a date YYYY-MM-DD",
                )
            })?;
            day.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(SHANGHAI).single())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| ValidationError::new("valid_from", "invalid_date", "no such day"))?
        }
    };
    let draft = RuleDraft {
        code: field(form, "code").trim().to_string(),
        category: field(form, "category").trim().to_string(),
        points: field(form, "points").trim().parse::<i64>().map_err(|_| {
            ValidationError::new("points", "invalid_points", "points are a whole number")
        })?,
        multipliers: Multipliers {
            basic: pct("basic", d.basic)?,
            good: pct("good", d.good)?,
            excellent: pct("excellent", d.excellent)?,
        },
        cap,
        valid_from,
    };
    draft.validate()?;
    Ok(draft)
}

async fn add_rule(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted_desk(&state, req, Permission::ManageRewards).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match parse_rule(&form) {
        Ok(d) => state.store.points_put_rule(&caller.actor(), d).await,
        Err(v) => Err(v.into()),
    };
    // A new rule may make past events earn points: the sweeper looks at all again.
    state.rewards.rescan();
    desk_outcome(&state, &caller, &frame, result, |_| "rule").await
}

async fn set_issuer(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted_desk(&state, req, Permission::ManageRewards).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let org = match field(&form, "org_id").trim() {
        "" | "0" => Ok(None),
        raw => raw
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ValidationError::new("org_id", "unknown_org", "choose an organisation")),
    };
    let result = match org {
        Ok(org) => state.store.points_set_issuer(&caller.actor(), org).await,
        Err(v) => Err(v.into()),
    };
    state.rewards.rescan();
    desk_outcome(&state, &caller, &frame, result, |_| "issuer").await
}

async fn add_item(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted_desk(&state, req, Permission::ManageRewards).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<(NewItem, i64), ValidationError> {
        let day = |name: &str, default: u16| -> Result<u16, ValidationError> {
            let raw = field(&form, name).trim();
            if raw.is_empty() {
                return Ok(default);
            }
            raw.parse::<u16>().map_err(|_| {
                ValidationError::new("window", "invalid_window", "window days are whole numbers")
            })
        };
        let window = Window::new(day("window_first", 1)?, day("window_last", 92)?)?;
        let stock = match field(&form, "stock").trim() {
            "" => 0,
            raw => raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ValidationError::new("units", "invalid_units", "stock is a whole number")
            })?,
        };
        Ok((
            NewItem {
                org_id: parse_i64(&form, "org_id").map_err(|_| {
                    ValidationError::new("org_id", "unknown_org", "choose an organisation")
                })?,
                name: field(&form, "name").trim().to_string(),
                cost: field(&form, "cost").trim().parse::<i64>().map_err(|_| {
                    ValidationError::new(
                        "cost",
                        "invalid_cost",
                        "the cost is a whole number of points",
                    )
                })?,
                window,
            },
            stock,
        ))
    })();
    let org_known = match &parsed {
        Ok((item, _)) => {
            let org = item.org_id;
            state.store.org(org, &DataScope::everything()).await.is_ok()
        }
        Err(_) => true,
    };
    let parsed = if org_known {
        parsed
    } else {
        Err(ValidationError::new(
            "org_id",
            "unknown_org",
            "no such organisation",
        ))
    };
    let result = match parsed {
        Ok((item, stock)) => match state.store.points_add_item(&caller.actor(), item).await {
            Ok(item) if stock > 0 => state
                .store
                .points_restock(&caller.actor(), item.id, stock)
                .await
                .map(|_| ()),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
        Err(v) => Err(v.into()),
    };
    desk_outcome(&state, &caller, &frame, result, |_| "item").await
}

async fn restock(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted_desk(&state, req, Permission::ManageRewards).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = parse_i64(&form, "item_id").and_then(|item| {
        parse_i64(&form, "units")
            .map(|units| (item, units))
            .map_err(|_| ValidationError::new("units", "invalid_units", "restock at least 1 unit"))
    });
    let result = match parsed {
        Ok((item, units)) => {
            state
                .store
                .points_restock(&caller.actor(), item, units)
                .await
        }
        Err(v) => Err(v.into()),
    };
    desk_outcome(&state, &caller, &frame, result, |_| "restock").await
}

/// When the awarded work was done: the start (Beijing time) of the day the form names,
/// today by default. A day, not the moment of posting, so that the same form sent
/// twice is the same award (a replay), not a conflict.
fn award_day(form: &[(String, String)]) -> Result<DateTime<Utc>, ValidationError> {
    let today = local_day(Utc::now());
    let day = match field(form, "done_on").trim() {
        "" => today,
        raw => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            ValidationError::new("done_on", "invalid_date", "the day is a date YYYY-MM-DD")
        })?,
    };
    if day > today {
        return Err(ValidationError::new(
            "done_on",
            "event_in_future",
            "an award cannot be for a day in the future",
        ));
    }
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(SHANGHAI).single())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ValidationError::new("done_on", "invalid_date", "no such day"))
}

async fn award(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted_desk(&state, req, Permission::AwardPoints).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<AwardRequest, ValidationError> {
        let person_id = parse_i64(&form, "person_id")?;
        let org_id = parse_i64(&form, "org_id")
            .map_err(|_| ValidationError::new("org_id", "unknown_org", "choose an organisation"))?;
        Ok(AwardRequest {
            event_ref: field(&form, "event_ref").trim().to_string(),
            person_id,
            org_id,
            rule_code: field(&form, "rule_code").trim().to_string(),
            quality: Quality::parse(field(&form, "quality"))?,
            at: award_day(&form)?,
        })
    })();
    let result = match parsed {
        Ok(r) => {
            // The person and the organisation must exist (a typo must not credit an
            // account nobody has, nor draw on a pool nobody keeps).
            let all = DataScope::everything();
            if state.store.person(r.person_id, &all).await.is_err() {
                Err(StoreError::Invalid(ValidationError::new(
                    "person_id",
                    "unknown_person",
                    "no such person",
                )))
            } else if state.store.org(r.org_id, &all).await.is_err() {
                Err(StoreError::Invalid(ValidationError::new(
                    "org_id",
                    "unknown_org",
                    "no such organisation",
                )))
            } else {
                state.store.points_award(&caller.actor(), r).await
            }
        }
        Err(v) => Err(v.into()),
    };
    desk_outcome(&state, &caller, &frame, result, |o| {
        if o.points < o.requested {
            "award_capped"
        } else {
            "award"
        }
    })
    .await
}

// ----- exports -----

async fn desk_caller(state: &AppState, headers: &HeaderMap) -> Result<(Caller, Frame), Response> {
    permitted_caller(state, headers, "/rewards/admin", Permission::ReadRewards).await
}

fn csv_response(header: &[&str], rows: Vec<Vec<String>>, name: &str) -> Response {
    let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    crate::export::download(
        crate::export::csv(&header, &rows),
        "text/csv; charset=utf-8",
        name,
    )
}

async fn awards_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (_, frame) = match desk_caller(&state, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let awards = match state.store.points_awards(None, 10_000_000).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "awards export");
            return server_failure(&state, &frame);
        }
    };
    let rows = awards
        .iter()
        .map(|a| {
            vec![
                a.at.clone(),
                a.award_id.clone(),
                a.event_ref.clone(),
                a.person_id.to_string(),
                a.name.clone(),
                a.org_id.to_string(),
                a.rule_code.clone(),
                a.rule_version.to_string(),
                a.category.clone(),
                a.quality.clone(),
                a.requested.to_string(),
                a.points.to_string(),
            ]
        })
        .collect();
    csv_response(
        &[
            "at",
            "award_id",
            "event_ref",
            "person_id",
            "name",
            "org_id",
            "rule_code",
            "rule_version",
            "category",
            "quality",
            "requested",
            "points",
        ],
        rows,
        "points-awards.csv",
    )
}

async fn ledger_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (_, frame) = match desk_caller(&state, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = match state.store.points_transfers(after, 10_000).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "ledger export");
                return server_failure(&state, &frame);
            }
        };
        let Some(last) = page.last() else { break };
        after = last.id;
        for t in &page {
            rows.push(vec![
                t.id.to_string(),
                t.created_at.clone(),
                t.debit.code(),
                t.credit.code(),
                t.asset.code(),
                t.amount.to_string(),
                t.reason.clone(),
                t.award_id.clone().unwrap_or_default(),
                t.redemption_id.map(|i| i.to_string()).unwrap_or_default(),
                t.reverses_id.map(|i| i.to_string()).unwrap_or_default(),
                t.refs.to_string(),
            ]);
        }
    }
    csv_response(
        &[
            "id",
            "created_at",
            "debit",
            "credit",
            "asset",
            "amount",
            "reason",
            "award_id",
            "redemption_id",
            "reverses_id",
            "refs",
        ],
        rows,
        "points-ledger.csv",
    )
}

#[derive(Deserialize)]
struct YearQuery {
    year: Option<String>,
}

fn this_year() -> i32 {
    local_day(Utc::now())
        .format("%Y")
        .to_string()
        .parse()
        .unwrap_or(2026)
}

/// The `year` of a query: this year when absent; `Err` when it is not a year.
fn year_of(q: &Result<QueryParams<YearQuery>, crate::error::ApiError>) -> Result<i32, ()> {
    match q {
        Ok(QueryParams(YearQuery { year: None })) => Ok(this_year()),
        Ok(QueryParams(YearQuery { year: Some(y) })) if y.trim().is_empty() => Ok(this_year()),
        Ok(QueryParams(YearQuery { year: Some(y) })) => y
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or(()),
        Err(_) => Err(()),
    }
}

async fn honours_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, crate::error::ApiError>,
) -> Response {
    let (_, frame) = match desk_caller(&state, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(year) = year_of(&q) else {
        return page_error(&state, &frame, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let loaded = async {
        Ok::<_, StoreError>((
            state.store.points_ranking(year).await?,
            state.store.points_honours(year).await?,
        ))
    }
    .await;
    let (ranking, honours) = match loaded {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "honours export");
            return server_failure(&state, &frame);
        }
    };
    let rows = ranking
        .iter()
        .map(|r| {
            let h = honours
                .iter()
                .find(|h| h.category == r.category && h.person_id == r.person_id);
            vec![
                year.to_string(),
                r.category.clone(),
                r.rank.to_string(),
                r.person_id.to_string(),
                r.name.clone(),
                r.points.to_string(),
                if r.rank <= SHORTLIST { "yes" } else { "no" }.to_string(),
                if r.confirmed { "yes" } else { "no" }.to_string(),
                h.map(|h| h.title.clone()).unwrap_or_default(),
                h.map(|h| h.certificate_no.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    csv_response(
        &[
            "year",
            "category",
            "rank",
            "person_id",
            "name",
            "points",
            "shortlist",
            "confirmed",
            "title",
            "certificate_no",
        ],
        rows,
        &format!("points-honours-{year}.csv"),
    )
}

// ----- honours -----

async fn honours_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, crate::error::ApiError>,
) -> Response {
    let (caller, frame) = match permitted_caller(
        &state,
        &headers,
        "/rewards/honours",
        Permission::ReadRewards,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    match year_of(&q) {
        Ok(year) => honours_view(&state, &caller, &frame, year, None).await,
        Err(()) => {
            let p = refusal(frame.lang, "invalid_year", "");
            honours_view(&state, &caller, &frame, this_year(), Some(p)).await
        }
    }
}

/// The title suggested for a category's honour.
fn suggested_title(lang: Lang, category: &str) -> String {
    label(lang, "rw_title_", category)
}

async fn honours_view(
    state: &AppState,
    caller: &Caller,
    frame: &Frame,
    year: i32,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let loaded = async {
        Ok::<_, StoreError>((
            state.store.points_ranking(year).await?,
            state.store.points_honours(year).await?,
        ))
    }
    .await;
    let (ranking, honours) = match loaded {
        Ok(x) => x,
        Err(e) => match from_store(lang, e) {
            Some(p) => {
                let resp = frame.render(
                    state,
                    "rewards_honours.html",
                    context! { year, categories => Vec::<Value>::new(), problem => problem_value(&Some(p)) },
                );
                return with_status(resp, &problem);
            }
            None => return server_failure(state, frame),
        },
    };
    let mut cats: Vec<String> = ranking.iter().map(|r| r.category.clone()).collect();
    cats.extend(honours.iter().map(|h| h.category.clone()));
    cats.sort();
    cats.dedup();
    let categories: Vec<Value> = cats
        .iter()
        .map(|cat| {
            let ranked: Vec<_> = ranking.iter().filter(|r| &r.category == cat).collect();
            let shortlist: Vec<Value> = ranked
                .iter()
                .take(SHORTLIST)
                .map(|r| {
                    context! {
                        rank => r.rank, person_id => r.person_id, name => r.name.clone(),
                        points => r.points, confirmed => r.confirmed,
                        reached => local_date(&lianxin_store::demands::ts(r.reached_at)),
                    }
                })
                .collect();
            let confirmed: Vec<Value> = honours
                .iter()
                .filter(|h| &h.category == cat)
                .map(|h| {
                    context! {
                        rank => h.rank, name => h.name.clone(), points => h.points,
                        title => h.title.clone(), certificate_no => h.certificate_no.clone(),
                        confirmed_at => local_date(&h.confirmed_at),
                    }
                })
                .collect();
            context! {
                code => cat.clone(),
                label => category_label(lang, cat),
                title => suggested_title(lang, cat),
                shortlist,
                others => ranked.len().saturating_sub(SHORTLIST),
                ranked => ranked.len(),
                confirmed,
            }
        })
        .collect();
    let current = this_year();
    let years: Vec<i32> = ((current - 4)..=current).rev().collect();
    let resp = frame.render(
        state,
        "rewards_honours.html",
        context! {
            year, years, categories,
            shortlist_size => SHORTLIST,
            manage => caller.role().allows(Permission::ManageRewards),
            problem => problem_value(&problem),
        },
    );
    with_status(resp, &problem)
}

async fn confirm_honours(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match super::posted_form(
        &state,
        req,
        "/rewards/honours",
        Permission::ManageRewards,
        FORM_LIMIT,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let Some(year) = field(&form, "year")
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
    else {
        let p = refusal(lang, "invalid_year", "");
        return honours_view(&state, &caller, &frame, this_year(), Some(p)).await;
    };
    let ids: Result<Vec<i64>, _> = form
        .iter()
        .filter(|(k, _)| k == "person_id")
        .map(|(_, v)| v.trim().parse::<i64>())
        .collect();
    let Ok(ids) = ids else {
        let p = refusal(lang, "not_on_shortlist", "");
        return honours_view(&state, &caller, &frame, year, Some(p)).await;
    };
    let result = state
        .store
        .points_confirm_honours(
            &caller.actor(),
            year,
            field(&form, "category"),
            field(&form, "title"),
            ids,
        )
        .await;
    match result {
        Ok(_) => see_other(&format!("/rewards/honours?year={year}")),
        Err(e) => match from_store(lang, e) {
            Some(p) => honours_view(&state, &caller, &frame, year, Some(p)).await,
            None => server_failure(&state, &frame),
        },
    }
}

async fn certificate_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(no): Path<String>,
) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, "/rewards/honours", Some(&caller));
    if no.len() > 100 {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    }
    let honour = match state.store.points_honour(&no).await {
        Ok(h) => h,
        Err(StoreError::NotFound { .. }) => {
            return page_error(&state, &frame, StatusCode::NOT_FOUND)
        }
        Err(e) => {
            tracing::error!(error = %e, "certificate");
            return server_failure(&state, &frame);
        }
    };
    let own = caller.role() == Role::Rider && caller.account.person_id == Some(honour.person_id);
    if !own && !caller.role().allows(Permission::ReadRewards) {
        // Not telling whether the certificate exists.
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    }
    let issuer = match state.store.points_issuer().await {
        Ok(Some(id)) => org_names(&state, vec![id]).await.get(&id).cloned(),
        _ => None,
    };
    let confirmed = parse_at(&honour.confirmed_at).map(local_day);
    let lang = frame.lang;
    let confirmed_text = confirmed
        .map(|d| {
            if lang == Lang::Zh {
                d.format("%Y年%-m月%-d日").to_string()
            } else {
                d.format("%-d %B %Y").to_string()
            }
        })
        .unwrap_or_default();
    frame.render(
        &state,
        "rewards_certificate.html",
        context! {
            honour => context! {
                year => honour.year, category => category_label(lang, &honour.category),
                name => honour.name.clone(), rank => honour.rank, points => honour.points,
                title => honour.title.clone(), certificate_no => honour.certificate_no.clone(),
            },
            issuer,
            confirmed => confirmed_text,
            back => if own { "/rewards" } else { "/rewards/honours" },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_words_in_both_languages() {
        for code in KNOWN_REFUSALS {
            for lang in [Lang::Zh, Lang::En] {
                let key = format!("rw_err_{code}");
                assert_ne!(tr(lang, &key), key, "{code}");
            }
        }
        for code in [
            "out_of_stock",
            "insufficient_points",
            "already_redeemed_this_quarter",
            "outside_window",
        ] {
            assert_eq!(refusal(Lang::Zh, code, "").status, StatusCode::CONFLICT);
            for lang in [Lang::Zh, Lang::En] {
                let key = format!("rw_why_{code}");
                assert_ne!(tr(lang, &key), key, "{code}");
            }
        }
    }

    #[test]
    fn every_task_type_has_a_name() {
        for code in lianxin_domain::points::TASK_TYPES {
            for lang in [Lang::Zh, Lang::En] {
                assert_ne!(rule_label(lang, code), *code);
            }
        }
    }

    #[test]
    fn window_dates_stay_inside_the_quarter() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T04:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            window_dates(Window::WHOLE_QUARTER, at),
            ("10-01".to_string(), "12-31".to_string())
        );
        assert_eq!(
            window_dates(Window::new(1, 15).unwrap(), at),
            ("10-01".to_string(), "10-15".to_string())
        );
    }
}
