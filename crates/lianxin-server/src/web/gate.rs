//! The rider gate pass pages (新通码):
//! - `/pass` is the rider's phone: the live QR for the current order. The device key
//!   is made and kept in the browser (a non-extractable WebCrypto key), the QR redrawn
//!   every 30-second step by `assets/pass.js`; the server only hands out the ticket.
//! - `/gate/scan` is the gate's tablet, signed in as a `gate_device` account: the
//!   camera, a vendored QR decoder and pass or deny in large type (`assets/gate.js`,
//!   which posts to the same `POST /api/v1/gate/scan` a gate box's token uses).
//! - `/gate/log` is the compound's and its property company's view: entries and exits,
//!   entries per hour and the median time at the gate; `/gate/log.csv` exports it.
//!
//! No page shows a rider's name or number: the log knows passes by their per-ticket
//! pseudonym, the order's platform and its building.

use super::{fail, page_error, permitted_caller, Frame};
use crate::api::gate::{read_log, LogQuery, LIST_PERIODS};
use crate::chart::bar_chart;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::i18n::{self, Lang};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use lianxin_domain::calendar::SHANGHAI;
use lianxin_domain::gate::stats;
use lianxin_domain::role::{Permission, Role};
use minijinja::{context, Value};

/// This area's templates, registered with the others.
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        "gate_pass.html",
        include_str!("../../templates/gate_pass.html"),
    ),
    (
        "gate_scan.html",
        include_str!("../../templates/gate_scan.html"),
    ),
    (
        "gate_log.html",
        include_str!("../../templates/gate_log.html"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pass", get(pass_page))
        .route("/gate/scan", get(scan_page))
        .route("/gate/log", get(log_page))
        .route("/gate/log.csv", get(log_csv))
}

fn tr(lang: Lang, key: &str) -> String {
    i18n::table(lang)
        .get(key)
        .map(|s| s.to_string())
        .unwrap_or_else(|| key.to_string())
}

/// The signed-in caller of a page meant for one role only (the rider's phone, the
/// gate's tablet): the 403 page for anybody else.
async fn caller_with_role(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    role: Role,
) -> Result<(crate::auth::Caller, Frame), Response> {
    let caller = super::page_caller(state, headers).await?;
    let frame = Frame::new(state, headers, here, Some(&caller));
    if caller.role() != role {
        return Err(page_error(state, &frame, StatusCode::FORBIDDEN));
    }
    Ok((caller, frame))
}

async fn pass_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (caller, frame) = match caller_with_role(&state, &headers, "/pass", Role::Rider).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rider = match state.store.rider_of_account(caller.account.id).await {
        Ok(r) => r,
        Err(e) => return fail(&state, &frame, e.into()),
    };
    let (registered, has_device, platform) = match &rider {
        Some(r) => {
            let devices = match state.store.devices_of(r.id).await {
                Ok(d) => d,
                Err(e) => return fail(&state, &frame, e.into()),
            };
            let platform = match state.store.platforms().await {
                Ok(all) => all
                    .into_iter()
                    .find(|p| p.code == r.platform)
                    .map_or_else(|| r.platform.clone(), |p| p.name),
                Err(e) => return fail(&state, &frame, e.into()),
            };
            (true, devices.iter().any(|d| d.active), platform)
        }
        None => (false, false, String::new()),
    };
    frame.render(
        &state,
        "gate_pass.html",
        context! {
            registered,
            has_device,
            platform,
            status => rider.as_ref().map(|r| r.status.as_str()).unwrap_or(""),
        },
    )
}

async fn scan_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (caller, frame) =
        match caller_with_role(&state, &headers, "/gate/scan", Role::GateDevice).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let gate = match state.store.gate_of_account(caller.account.id).await {
        Ok(g) => g,
        Err(e) => return fail(&state, &frame, e.into()),
    };
    let compound = match &gate {
        Some(g) => match state.store.place_by_code(&g.compound_code).await {
            Ok(p) => p.map(|p| p.name),
            Err(e) => return fail(&state, &frame, e.into()),
        },
        None => None,
    };
    let reasons: std::collections::BTreeMap<&str, String> = lianxin_pass::Deny::ALL
        .iter()
        .map(|d| (d.code(), outcome_label(frame.lang, d.code())))
        .collect();
    frame.render(
        &state,
        "gate_scan.html",
        context! {
            gate => gate.as_ref().map(|g| context! { name => g.name.clone(), compound => compound.clone() }),
            reasons,
        },
    )
}

/// The lines the page lists (the CSV has them all).
const LIST_LINES: usize = 50;

fn parse_at(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn local_time(at: &str) -> String {
    parse_at(at)
        .map(|t| {
            t.with_timezone(&SHANGHAI)
                .format("%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| at.to_string())
}

/// The reason code's words in the page language.
fn outcome_label(lang: Lang, outcome: &str) -> String {
    let key = format!("gl_outcome_{outcome}");
    let text = tr(lang, &key);
    if text == key {
        outcome.to_string()
    } else {
        text
    }
}

/// A pseudonym as the page shows it: enough to follow one pass through the log.
fn short(pseudonym: &Option<String>) -> String {
    pseudonym
        .as_deref()
        .map(|p| p.chars().take(8).collect())
        .unwrap_or_default()
}

fn seconds_text(lang: Lang, ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if lang == Lang::Zh {
        format!("{:.1} 秒", ms as f64 / 1000.0)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

async fn log_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<LogQuery>, ApiError>,
) -> Response {
    let (caller, frame) =
        match permitted_caller(&state, &headers, "/gate/log", Permission::ReadGateLog).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let lang = frame.lang;
    let q = match q {
        Ok(QueryParams(q)) => q,
        Err(e) => return fail(&state, &frame, e),
    };
    let view = match read_log(&state, &caller, &q).await {
        Ok(v) => v,
        Err(e) => return fail(&state, &frame, e),
    };
    let facts = crate::api::gate::scan_facts(&view.rows);
    let s = stats(&facts);
    let hours: Vec<(String, i64)> = s
        .entries_by_hour
        .iter()
        .enumerate()
        .map(|(h, n)| (format!("{h:02}:00"), i64::from(*n)))
        .collect();
    let chart = bar_chart(&tr(lang, "gl_by_hour"), &hours);
    let refusals: Vec<Value> = s
        .refusals
        .iter()
        .map(|(code, n)| context! { code => code, label => outcome_label(lang, code), count => n })
        .collect();
    let lines: Vec<Value> = view
        .rows
        .iter()
        .take(LIST_LINES)
        .map(|r| {
            context! {
                at => local_time(&r.at),
                gate => r.gate_name.clone(),
                direction => tr(lang, if r.direction == "entry" { "gl_entry" } else { "gl_exit" }),
                passed => r.outcome == "pass",
                outcome => outcome_label(lang, &r.outcome),
                pass => short(&r.pseudonym),
                platform => r.platform.clone().unwrap_or_default(),
                building => r.building.clone().unwrap_or_default(),
            }
        })
        .collect();
    let compounds: Vec<Value> = view
        .compounds
        .iter()
        .map(|c| context! { code => c.code.clone(), name => c.name.clone(), gates => c.gates })
        .collect();
    frame.render(
        &state,
        "gate_log.html",
        context! {
            compounds,
            compound => view.compound.as_ref().map(|c| context! { code => c.code.clone(), name => c.name.clone(), gates => c.gates }),
            days => view.days,
            periods => LIST_PERIODS.to_vec(),
            entries => s.entries,
            exits => s.exits,
            refused => s.refusals.iter().map(|(_, n)| n).sum::<u32>(),
            refusals,
            median => s.median_ms_at_gate.map(|ms| seconds_text(lang, ms)),
            first_try => s.first_try_share.map(|f| format!("{:.0}%", f * 100.0)),
            chart,
            lines,
            more => view.rows.len() > LIST_LINES,
            truncated => view.truncated,
            total => view.rows.len(),
        },
    )
}

async fn log_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<LogQuery>, ApiError>,
) -> Response {
    let (caller, frame) =
        match permitted_caller(&state, &headers, "/gate/log", Permission::ReadGateLog).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let q = match q {
        Ok(QueryParams(q)) => q,
        Err(e) => return fail(&state, &frame, e),
    };
    let view = match read_log(&state, &caller, &q).await {
        Ok(v) => v,
        Err(e) => return fail(&state, &frame, e),
    };
    let header_row: Vec<String> = [
        "time",
        "gate",
        "direction",
        "outcome",
        "pass",
        "platform",
        "building",
        "took_ms",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = view
        .rows
        .iter()
        .map(|r| {
            vec![
                r.at.clone(),
                r.gate_name.clone(),
                r.direction.clone(),
                r.outcome.clone(),
                short(&r.pseudonym),
                r.platform.clone().unwrap_or_default(),
                r.building.clone().unwrap_or_default(),
                r.took_ms.map(|m| m.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let name = view
        .compound
        .as_ref()
        .map(|c| format!("gate-log-{}.csv", c.code))
        .unwrap_or_else(|| "gate-log.csv".into());
    crate::export::download(
        crate::export::csv(&header_row, &rows),
        "text/csv; charset=utf-8",
        &name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_words_in_both_languages() {
        for deny in lianxin_pass::Deny::ALL {
            for lang in [Lang::Zh, Lang::En] {
                assert_ne!(outcome_label(lang, deny.code()), deny.code(), "{deny:?}");
            }
        }
    }
}
