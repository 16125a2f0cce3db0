//! 反馈: the reporter's side of the loop — the public tracking page `/t/{token}` with its
//! rating form, and a signed-in resident's list `/my/demands`. The page's script follows
//! the API's tracking stream (`/api/v1/track/{token}/stream`) to update without a reload.
//!
//! The tracking page shows what `api::demands::public_view` shows (no personal data, no
//! internal notes beyond `public_note`). Whoever holds the token is the reporter, so
//! rating needs no account; the form's CSRF token is bound to the pre-login cookie.

use super::{
    category_name, clock_config, demand_clock, explain, failed, field, from_store, keep_pre_cookie,
    lang, local_time, optional_caller, problem_value, public_csrf, public_csrf_ok, rating_label,
    see_other, small_form, status_label, status_labels_json, steps, tr, Problem,
};
use crate::api::demands::{public_note, queue_query};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::web::{error_page, page_caller, Frame};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use lianxin_domain::demand::{Rating, Status};
use lianxin_store::demands::Demand;
use minijinja::{context, Value};
use std::collections::BTreeMap;

#[derive(serde::Deserialize, Default)]
pub struct TrackQuery {
    new: Option<String>,
    rated: Option<String>,
}

/// The rating labels as JSON for the live script.
fn rating_labels_json(lang: Lang) -> String {
    let map: BTreeMap<&str, String> = Rating::ALL
        .iter()
        .map(|r| (r.as_str(), rating_label(lang, *r)))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

fn rating_options(lang: Lang) -> Vec<Value> {
    Rating::ALL
        .iter()
        .map(|r| context! { code => r.as_str(), name => rating_label(lang, *r) })
        .collect()
}

/// The public face of a demand: what the tracking page shows.
fn public_demand(state: &AppState, lang: Lang, d: &Demand) -> Value {
    context! {
        id => d.id,
        title => d.title.clone(),
        category => category_name(state, lang, &d.category, &d.category_name),
        place_name => d.place_name.clone(),
        status => d.status.as_str(),
        status_label => status_label(lang, d.status),
        terminal => d.status.is_terminal(),
        owner_name => d.owner_name.clone(),
        handler_name => d.handler_name.clone(),
        received => local_time(d.received_at),
        answer => d.answer.clone(),
        rating => d.rating.map(|r| r.as_str()),
        rating_label => d.rating.map(|r| rating_label(lang, r)),
        reopened => d.reopened,
        overdue => d.overdue,
        can_rate => d.status == Status::Answered,
        version => d.version,
    }
}

/// The tracking link as the visitor should keep it: absolute when the Host header is a
/// plain host name, else the path.
fn tracking_link(state: &AppState, headers: &HeaderMap, token: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() < 200
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    match host {
        Some(h) => {
            let scheme = if super::super::secure(state, headers) {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{h}/t/{token}")
        }
        None => format!("/t/{token}"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    headers: &HeaderMap,
    caller: Option<&Caller>,
    token: &str,
    d: &Demand,
    q: &TrackQuery,
    problem: Option<Problem>,
) -> Response {
    let mut frame = Frame::new(state, headers, &format!("/t/{token}"), caller);
    let lang = frame.lang;
    let (csrf, pre) = public_csrf(state, headers, caller);
    frame.csrf = csrf;
    let events = match state.store.demand_events(d.id).await {
        Ok(e) => e,
        Err(e) => return failed(state, &frame, e.into()),
    };
    let history: Vec<Value> = events
        .iter()
        .map(|e| {
            context! {
                at => local_time(e.at),
                action => super::action_label(lang, &e.action),
                unit => e.unit_name.clone(),
                note => public_note(&e.action, e.note.as_deref()),
            }
        })
        .collect();
    let now = state.desk.now();
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let mut resp = frame.render(
        state,
        "track.html",
        context! {
            d => public_demand(state, lang, d),
            token,
            steps => steps(lang, d.status),
            clock => demand_clock(state, lang, d, now),
            clock_cfg => clock_config(state, lang),
            history,
            ratings => rating_options(lang),
            is_new => q.new.is_some(),
            rated => q.rated.is_some(),
            link => tracking_link(state, headers, token),
            status_labels => status_labels_json(lang),
            rating_labels => rating_labels_json(lang),
            problem => problem.as_ref().map(problem_value),
            signed_in => caller.is_some(),
        },
    );
    *resp.status_mut() = status;
    // The page may hold a token: keep it out of shared caches and referrers.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    keep_pre_cookie(state, headers, &mut resp, pre.as_deref());
    resp
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    crate::extract::QueryParams(q): crate::extract::QueryParams<TrackQuery>,
) -> Response {
    let caller = match optional_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match state.desk.by_token(&token).await {
        Ok(Some(d)) => render(&state, &headers, caller.as_ref(), &token, &d, &q, None).await,
        Ok(None) => error_page(&state, &headers, StatusCode::NOT_FOUND),
        Err(e) => error_page(&state, &headers, ApiError::from(e).status),
    }
}

/// The reporter rates the answer; 不满意 reopens the demand.
pub async fn rate(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let lang = lang(&headers);
    let caller = match optional_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let d = match state.desk.by_token(&token).await {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(&state, &headers, StatusCode::NOT_FOUND),
        Err(e) => return error_page(&state, &headers, ApiError::from(e).status),
    };
    let Some(form) = small_form(req).await else {
        return error_page(&state, &headers, StatusCode::BAD_REQUEST);
    };
    let q = TrackQuery::default();
    if !public_csrf_ok(&state, &headers, caller.as_ref(), field(&form, "csrf")) {
        let p = Problem {
            status: StatusCode::FORBIDDEN,
            message: tr(lang, "err_form_expired"),
            detail: "the CSRF token is missing or wrong".into(),
            field: None,
        };
        return render(&state, &headers, caller.as_ref(), &token, &d, &q, Some(p)).await;
    }
    let rating = match Rating::parse(field(&form, "rating")) {
        Ok(r) => r,
        Err(v) => {
            let p = explain(
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                v.code,
                &v.field,
                &v.message,
            );
            return render(&state, &headers, caller.as_ref(), &token, &d, &q, Some(p)).await;
        }
    };
    let comment = Some(field(&form, "comment").to_string()).filter(|c| !c.trim().is_empty());
    match state
        .desk
        .rate(d.id, "reporter".into(), rating, comment)
        .await
    {
        Ok(_) => see_other(&format!("/t/{token}?rated=1")),
        Err(e) => match from_store(lang, e) {
            Ok(p) => {
                // Show the demand as it is now, with the refusal.
                let d = state.store.demand(d.id).await.unwrap_or(d);
                render(&state, &headers, caller.as_ref(), &token, &d, &q, Some(p)).await
            }
            Err(e) => error_page(&state, &headers, e.status),
        },
    }
}

/// A signed-in resident's own demands, newest first.
pub async fn mine(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, "/my/demands", Some(&caller));
    let lang = frame.lang;
    let list = match queue_query(&state, &caller, true).await {
        Ok(q) => state.store.search_demands(&q).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let list = match list {
        Ok(l) => l,
        Err(e) => return failed(&state, &frame, e),
    };
    let now = state.desk.now();
    let demands: Vec<Value> = list
        .iter()
        .map(|d| {
            context! {
                id => d.id,
                title => d.title.clone(),
                category => category_name(&state, lang, &d.category, &d.category_name),
                place_name => d.place_name.clone(),
                status => d.status.as_str(),
                status_label => status_label(lang, d.status),
                received => local_time(d.received_at),
                owner_name => d.owner_name.clone(),
                handler_name => d.handler_name.clone(),
                can_rate => d.status == Status::Answered,
                clock => demand_clock(&state, lang, d, now),
            }
        })
        .collect();
    // The reporter's own notices: answers to rate, reminders.
    let notices = match super::work::notice_values(&state, lang, Some(&[]), caller.account.id).await
    {
        Ok(n) => n,
        Err(e) => return failed(&state, &frame, e),
    };
    frame.render(
        &state,
        "my_demands.html",
        context! { demands, notices, clock_cfg => clock_config(&state, lang) },
    )
}
