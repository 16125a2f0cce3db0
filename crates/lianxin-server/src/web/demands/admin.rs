//! The loop's rules, for administrators (`/admin/loop`): routing rules (which unit a
//! demand goes to, by category and place), time limits (per urgency, and per category ×
//! urgency), and the official holiday calendars the working-day deadlines count on.
//!
//! Changes go through the same helpers as the API (`add_routing_rule`,
//! `set_time_limit`) or the same store calls, are audited by the store, and reload the
//! desk so the next demand is routed and timed by the new rules.

use super::{
    explain, failed, field, from_api, from_store, opt, problem_value, see_other, tr, Problem,
};
use crate::api::demands::{add_routing_rule, set_time_limit};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::i18n::Lang;
use crate::web::{page_error, Frame};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Datelike;
use lianxin_domain::calendar::local_day;
use lianxin_domain::demand::Urgency;
use lianxin_domain::role::Permission;
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
pub struct AdminQuery {
    ok: Option<String>,
}

/// What the admin pages may confirm after a change.
const CONFIRMATIONS: [&str; 4] = ["rule_added", "rule_deleted", "limit_set", "calendar_set"];

async fn admin_caller(state: &AppState, headers: &HeaderMap) -> Result<(Caller, Frame), Response> {
    crate::web::permitted_caller(state, headers, "/admin/loop", Permission::ManageLoop).await
}

async fn render(
    state: &AppState,
    frame: &Frame,
    ok: Option<&str>,
    problem: Option<Problem>,
    form: &[(String, String)],
) -> Response {
    let lang = frame.lang;
    let result: Result<Response, ApiError> = async {
        let categories = state.desk.categories();
        let cat_name = |code: &str| -> String {
            categories
                .iter()
                .find(|c| c.code == code)
                .map(|c| if lang == Lang::Zh { c.name_zh.clone() } else { c.name_en.clone() })
                .unwrap_or_else(|| code.to_string())
        };
        let rules: Vec<Value> = state
            .store
            .routing_rules()
            .await?
            .into_iter()
            .map(|r| {
                context! {
                    id => r.id,
                    category => r.category.as_deref().map(cat_name).unwrap_or_else(|| tr(lang, "all_categories")),
                    category_code => r.category.clone().unwrap_or_default(),
                    place_name => r.place_name,
                    place_code => r.place_code,
                    unit_name => r.unit_name,
                    unit_code => r.unit_code,
                }
            })
            .collect();
        let cfg = state.desk.config();
        let configured = state.store.time_limits().await?;
        let is_set = |cat: Option<&str>, u: Urgency| {
            configured
                .iter()
                .any(|r| r.category.as_deref() == cat && r.urgency == u)
        };
        let urgencies: Vec<Value> = Urgency::ALL
            .iter()
            .map(|u| context! { code => u.as_str(), name => super::urgency_label(lang, *u) })
            .collect();
        let defaults: Vec<Value> = Urgency::ALL
            .iter()
            .map(|u| {
                context! {
                    urgency => super::urgency_label(lang, *u),
                    limit => cfg.policy.limit("", *u).to_string(),
                    set => is_set(None, *u),
                }
            })
            .collect();
        let matrix: Vec<Value> = categories
            .iter()
            .map(|c| {
                let cells: Vec<Value> = Urgency::ALL
                    .iter()
                    .map(|u| context! { limit => cfg.policy.limit(&c.code, *u).to_string(), set => is_set(Some(&c.code), *u) })
                    .collect();
                context! { code => c.code.clone(), name => cat_name(&c.code), cells }
            })
            .collect();
        let overrides: Vec<Value> = configured
            .iter()
            .map(|r| {
                context! {
                    category => r.category.as_deref().map(cat_name).unwrap_or_else(|| tr(lang, "all_categories")),
                    category_code => r.category.clone().unwrap_or_default(),
                    urgency => super::urgency_label(lang, r.urgency),
                    urgency_code => r.urgency.as_str(),
                    limit => r.time_limit.clone(),
                }
            })
            .collect();
        let this_year = local_day(state.desk.now()).year();
        let (covered, added) = crate::api::demands::calendar_coverage(state).await?;
        let kept: BTreeMap<&str, &str> = form
            .iter()
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
        let mut resp = frame.render(
            state,
            "loop_admin.html",
            context! {
                rules,
                categories => super::category_options(state, lang),
                urgencies,
                defaults,
                matrix,
                overrides,
                rating_window => cfg.rating_window.to_string(),
                covered,
                added,
                this_year,
                next_year => this_year + 1,
                next_year_missing => !cfg.calendar.covers(this_year + 1),
                ok => ok.map(|k| tr(lang, &format!("ok_{k}"))),
                problem => problem.as_ref().map(problem_value),
                failed_form => kept.get("form").copied(),
                kept,
            },
        );
        *resp.status_mut() = status;
        Ok(resp)
    }
    .await;
    result.unwrap_or_else(|e| failed(state, frame, e))
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<AdminQuery>, ApiError>,
) -> Response {
    let (_, frame) = match admin_caller(&state, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ok = q.ok().and_then(|QueryParams(q)| q.ok);
    let ok = ok.as_deref().filter(|k| CONFIRMATIONS.contains(k));
    render(&state, &frame, ok, None, &[]).await
}

/// Reads a posted admin form after checking the caller and the CSRF token.
async fn posted(
    state: &AppState,
    req: Request,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    crate::web::posted_form(
        state,
        req,
        "/admin/loop",
        Permission::ManageLoop,
        256 * 1024,
    )
    .await
}

/// After a change: back to the page with a confirmation, or the page with the refusal.
async fn finish(
    state: &AppState,
    frame: &Frame,
    form: &[(String, String)],
    result: Result<(), ApiError>,
    ok: &str,
    anchor: &str,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/admin/loop?ok={ok}#{anchor}")),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => render(state, frame, None, Some(p), form).await,
            Err(e) => failed(state, frame, e),
        },
    }
}

pub async fn add_rule(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = add_routing_rule(
        &state,
        &caller,
        opt(&form, "category"),
        field(&form, "place"),
        field(&form, "unit"),
    )
    .await
    .map(|_| ());
    finish(&state, &frame, &form, result, "rule_added", "rules").await
}

pub async fn delete_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (caller, frame, form) = match posted(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let result = async {
        state.store.delete_routing_rule(&caller.actor(), id).await?;
        state.desk.reload().await?;
        Ok::<(), lianxin_store::StoreError>(())
    }
    .await;
    match result {
        Ok(()) => see_other("/admin/loop?ok=rule_deleted#rules"),
        Err(e) => match from_store(frame.lang, e) {
            Ok(p) => render(&state, &frame, None, Some(p), &form).await,
            Err(e) => failed(&state, &frame, e),
        },
    }
}

pub async fn set_limit(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = set_time_limit(
        &state,
        &caller,
        opt(&form, "category"),
        field(&form, "urgency"),
        opt(&form, "time_limit"),
    )
    .await;
    finish(&state, &frame, &form, result, "limit_set", "limits").await
}

pub async fn set_calendar(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match posted(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let year = field(&form, "year")
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2100).contains(y));
    let Some(year) = year else {
        let p = explain(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_year",
            "year",
            "the year must be between 2000 and 2100",
        );
        return render(&state, &frame, None, Some(p), &form).await;
    };
    let toml = field(&form, "toml").replace("\r\n", "\n");
    let result = async {
        crate::api::demands::check_calendar_upload(year, &toml)?;
        state
            .store
            .set_calendar_year(&caller.actor(), i64::from(year), &toml)
            .await?;
        state.desk.reload().await?;
        Ok(())
    }
    .await;
    finish(&state, &frame, &form, result, "calendar_set", "calendar").await
}
