//! 研判 and 落实: the worker's queue (`/demands`) and a demand's page (`/demands/{id}`)
//! with the steps the caller's units may take.
//!
//! The queue is the API's queue (`queue_query`): the caller's scope, ordered by deadline,
//! each with a deadline clock computed from the desk's clock. The demand page offers only
//! the steps the loop allows the caller's units right now; the desk still decides, and
//! when it refuses (the demand moved on, the step belongs to another unit, a field breaks
//! a rule) the page says so in words rather than as a raw error.

use super::{
    acting_units, acts_for, category_name, category_options, channel_label, clock_config,
    demand_clock, explain, failed, field, field_label, from_api, from_store, kind_label, lang,
    local_time, opt, problem_value, rating_label, see_other, small_form, status_label,
    status_options, steps, tr, urgency_label, urgency_options, Problem,
};
use crate::api::demands::{
    caller_units, check_merge_target, demand_stream, parse_action, photo_response, public_note,
    queue_query, step_by, visible_demand,
};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::i18n::Lang;
use crate::web::{page_caller, page_error, Frame};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use lianxin_domain::demand::{Rating, Status};
use lianxin_domain::role::Permission;
use lianxin_store::demands::Demand;
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::HashSet;

/// How many demands one queue page lists.
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct QueueFilter {
    status: Option<String>,
    category: Option<String>,
    overdue: Option<String>,
    offset: Option<String>,
}

fn notice_label(lang: Lang, kind: &str) -> String {
    let key = format!("notice_{kind}");
    let text = tr(lang, &key);
    if text == key {
        kind.to_string()
    } else {
        text
    }
}

/// The latest notices for these units (`None`: every unit's) and this account, as the
/// queue and "my demands" pages list them.
pub(super) async fn notice_values(
    state: &AppState,
    lang: Lang,
    units: Option<&[i64]>,
    account_id: i64,
) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .notices(units, Some(account_id), 10)
        .await?
        .into_iter()
        .map(|n| {
            context! {
                kind => n.kind.clone(),
                label => notice_label(lang, &n.kind),
                demand_id => n.demand_id,
                title => n.demand_title,
                at => local_time(n.at),
                urgent => matches!(n.kind.as_str(), "overdue" | "escalated" | "reopened"),
            }
        })
        .collect())
}

/// A queue row: what a worker needs to decide what to do next.
fn queue_row(
    state: &AppState,
    lang: Lang,
    d: &Demand,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    context! {
        id => d.id,
        title => d.title.clone(),
        category => category_name(state, lang, &d.category, &d.category_name),
        kind => kind_label(lang, d.kind),
        place_name => d.place_name.clone(),
        status => d.status.as_str(),
        status_label => status_label(lang, d.status),
        urgency => urgency_label(lang, d.urgency),
        emergency => d.urgency == lianxin_domain::demand::Urgency::Emergency,
        owner_name => d.owner_name.clone(),
        handler_name => d.handler_name.clone(),
        transfer_to_name => d.transfer_to_name.clone(),
        supervisor_name => d.supervisor_name.clone(),
        escalation_level => d.escalation_level,
        reopened => d.reopened,
        overdue => d.overdue,
        received => local_time(d.received_at),
        clock => demand_clock(state, lang, d, now),
    }
}

pub async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    filter: Result<QueryParams<QueueFilter>, ApiError>,
) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !caller.role().allows(Permission::ReadDemands) {
        // A resident's queue is their own demands.
        return Redirect::to("/my/demands").into_response();
    }
    let frame = Frame::new(&state, &headers, "/demands", Some(&caller));
    let lang = frame.lang;
    let f = filter.map(|QueryParams(f)| f).unwrap_or_default();
    let mut q = match queue_query(&state, &caller, false).await {
        Ok(q) => q,
        Err(e) => return failed(&state, &frame, e),
    };
    let mut problem = None;
    let status = f.status.clone().unwrap_or_default();
    if !status.trim().is_empty() {
        match Status::parse(&status) {
            Ok(s) => q.statuses.push(s),
            Err(v) => {
                problem = Some(explain(
                    lang,
                    StatusCode::BAD_REQUEST,
                    v.code,
                    &v.field,
                    &v.message,
                ))
            }
        }
    }
    let category = f.category.clone().unwrap_or_default();
    if !category.trim().is_empty() {
        q.categories.push(category.trim().to_string());
    }
    let overdue = matches!(f.overdue.as_deref(), Some("1" | "on" | "true"));
    q.overdue_only = overdue;
    let offset = f
        .offset
        .as_deref()
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(0)
        .clamp(0, 1_000_000);
    q.limit = PAGE_SIZE + 1;
    q.offset = offset;
    let mut list = match state.store.search_demands(&q).await {
        Ok(l) => l,
        Err(e) => return failed(&state, &frame, e.into()),
    };
    let more = list.len() as i64 > PAGE_SIZE;
    list.truncate(PAGE_SIZE as usize);
    let units = match caller_units(&state, &caller).await {
        Ok(u) => u,
        Err(e) => return failed(&state, &frame, e),
    };
    let notices = match notice_values(&state, lang, units.as_deref(), caller.account.id).await {
        Ok(n) => n,
        Err(e) => return failed(&state, &frame, e),
    };
    let now = state.desk.now();
    let demands: Vec<Value> = list
        .iter()
        .map(|d| queue_row(&state, lang, d, now))
        .collect();
    let page_link = |offset: i64| {
        let mut s = format!("/demands?offset={offset}");
        for (k, v) in [("status", status.trim()), ("category", category.trim())] {
            if !v.is_empty() {
                s.push_str(&format!("&{k}={v}"));
            }
        }
        if overdue {
            s.push_str("&overdue=1");
        }
        s
    };
    let mut resp = frame.render(
        &state,
        "queue.html",
        context! {
            demands,
            notices,
            statuses => status_options(lang),
            categories => category_options(&state, lang),
            f => context! { status => status.trim(), category => category.trim(), overdue },
            next => more.then(|| page_link(offset + PAGE_SIZE)),
            prev => (offset > 0).then(|| page_link((offset - PAGE_SIZE).max(0))),
            problem => problem.as_ref().map(problem_value),
            clock_cfg => clock_config(&state, lang),
        },
    );
    if let Some(p) = problem {
        *resp.status_mut() = p.status;
    }
    resp
}

/// Where a demand stands in the loop: its status and the units involved.
#[derive(Debug, Clone, Copy)]
struct Standing {
    status: Status,
    owner: i64,
    handler: Option<i64>,
    transfer_to: Option<i64>,
}

impl From<&Demand> for Standing {
    fn from(d: &Demand) -> Standing {
        Standing {
            status: d.status,
            owner: d.owner_id,
            handler: d.handler_id,
            transfer_to: d.transfer_to,
        }
    }
}

/// The steps the caller's units may take on a demand now, in the order of the loop.
fn available_actions(d: Standing, units: &Option<Vec<i64>>) -> Vec<&'static str> {
    use Status::*;
    let owner = acts_for(units, Some(d.owner));
    let handler = acts_for(units, d.handler);
    let target = acts_for(units, d.transfer_to);
    let early = matches!(d.status, Received | Assessed);
    let mut a = Vec::new();
    if owner && early {
        a.push("assess");
    }
    if owner && d.status == Assessed && d.transfer_to.is_none() {
        a.push("assign");
    }
    if handler && d.status == Assigned {
        a.push("start");
    }
    if handler && matches!(d.status, Assigned | InProgress) {
        a.push("answer");
        a.push("return");
    }
    if target && d.transfer_to.is_some() && !d.status.is_terminal() {
        a.push("accept_transfer");
        a.push("decline_transfer");
    }
    if owner && early && d.transfer_to.is_none() {
        a.push("transfer");
    }
    if owner && early {
        a.push("merge");
        a.push("reject");
    }
    a
}

/// The units a demand can be assigned or transferred to: those in the caller's scope,
/// then the units of the routing rules (the five parties a demand may climb to).
async fn unit_options(state: &AppState, c: &Caller) -> Result<Vec<Value>, ApiError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for o in state
        .store
        .search_orgs("", None, &c.account.scope, 300)
        .await?
    {
        if seen.insert(o.id) {
            out.push(context! { id => o.id, name => o.name, code => o.code, group => "scope" });
        }
    }
    for r in state.store.routing_rules().await? {
        if seen.insert(r.unit_id) {
            out.push(context! { id => r.unit_id, name => r.unit_name, code => r.unit_code, group => "rules" });
        }
    }
    Ok(out)
}

/// The demand's fields for its page. The reporter's phone is only ever the mask.
fn facts(state: &AppState, lang: Lang, d: &Demand) -> Value {
    let attributes: Vec<Value> = d
        .attributes
        .as_ref()
        .and_then(|a| a.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let value = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    context! { name => field_label(lang, k), value }
                })
                .collect()
        })
        .unwrap_or_default();
    context! {
        id => d.id,
        title => d.title.clone(),
        description => d.description.clone(),
        kind => kind_label(lang, d.kind),
        category => category_name(state, lang, &d.category, &d.category_name),
        category_code => d.category.clone(),
        urgency => urgency_label(lang, d.urgency),
        urgency_code => d.urgency.as_str(),
        emergency => d.urgency == lianxin_domain::demand::Urgency::Emergency,
        channel => channel_label(lang, d.channel),
        place_name => d.place_name.clone(),
        place_code => d.place_code.clone(),
        address => d.address.clone(),
        attributes,
        reporter_name => d.reporter_name.clone(),
        reporter_phone => d.reporter_phone_masked.clone(),
        status => d.status.as_str(),
        status_label => status_label(lang, d.status),
        terminal => d.status.is_terminal(),
        owner_name => d.owner_name.clone(),
        handler_name => d.handler_name.clone(),
        transfer_to_name => d.transfer_to_name.clone(),
        supervisor_name => d.supervisor_name.clone(),
        escalation_level => d.escalation_level,
        received => local_time(d.received_at),
        handling_deadline => local_time(d.handling_deadline),
        first_response => d.first_response_at.map(local_time),
        closed => d.closed_at.map(local_time),
        answer => d.answer.clone(),
        rating => d.rating.map(|r| rating_label(lang, r)),
        rating_code => d.rating.map(|r| r.as_str()),
        reopened => d.reopened,
        overdue => d.overdue,
        merged_into => d.merged_into,
        version => d.version,
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    done: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    d: &Demand,
    done: Option<&str>,
    problem: Option<Problem>,
    form: &[(String, String)],
) -> Response {
    let lang = frame.lang;
    let staff = c.role().allows(Permission::ReadDemands);
    let reporter = d.reporter_account_id == Some(c.account.id);
    let result: Result<Response, ApiError> = async {
        let events = state.store.demand_events(d.id).await?;
        let history: Vec<Value> = events
            .iter()
            .map(|e| {
                let note = if staff {
                    e.note.as_deref()
                } else {
                    public_note(&e.action, e.note.as_deref())
                };
                context! {
                    at => local_time(e.at),
                    iso => super::iso(e.at),
                    who => if staff { Some(e.actor_name.clone()) } else { None },
                    action => super::action_label(lang, &e.action),
                    action_code => e.action.clone(),
                    unit => e.unit_name.clone(),
                    note,
                    to_status => status_label(lang, e.to_status),
                }
            })
            .collect();
        let photos = state.store.demand_photo_ids(d.id).await?;
        let units = acting_units(state, c).await?;
        let actions = if c.role().allows(Permission::HandleDemands) {
            available_actions(Standing::from(d), &units)
        } else {
            Vec::new()
        };
        let needs_units = actions.iter().any(|a| matches!(*a, "assign" | "transfer"));
        let unit_choices = if needs_units {
            unit_options(state, c).await?
        } else {
            Vec::new()
        };
        let actions: Vec<Value> = actions
            .iter()
            .map(|a| context! { code => *a, label => tr(lang, &format!("act_{a}")) })
            .collect();
        // What the refused form said, so the worker need not type it again.
        let kept: std::collections::BTreeMap<&str, &str> = form
            .iter()
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let now = state.desk.now();
        let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
        let mut resp = frame.render(
            state,
            "demand.html",
            context! {
                d => facts(state, lang, d),
                steps => steps(lang, d.status),
                clock => demand_clock(state, lang, d, now),
                clock_cfg => clock_config(state, lang),
                history,
                photos,
                actions,
                units => unit_choices,
                categories => category_options(state, lang),
                urgencies => urgency_options(lang),
                ratings => Rating::ALL.iter().map(|r| context! { code => r.as_str(), name => rating_label(lang, *r) }).collect::<Vec<_>>(),
                staff,
                can_call => c.role().allows(Permission::HandleDemands),
                can_rate => reporter && d.status == Status::Answered,
                done => done.map(|a| tr(lang, &format!("act_{a}"))),
                problem => problem.as_ref().map(problem_value),
                failed_action => kept.get("action").copied(),
                kept,
            },
        );
        *resp.status_mut() = status;
        Ok(resp)
    }
    .await;
    result.unwrap_or_else(|e| failed(state, frame, e))
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|n| *n > 0)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<QueryParams<PageQuery>, ApiError>,
) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, &format!("/demands/{id}"), Some(&caller));
    let Some(id) = parse_id(&id) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let d = match visible_demand(&state, &caller, id).await {
        Ok(d) => d,
        Err(e) => return failed(&state, &frame, e),
    };
    let done = q.ok().and_then(|QueryParams(q)| q.done);
    let done = done
        .as_deref()
        .filter(|a| crate::desk::Action::NAMES.contains(a) || *a == "rate");
    render(&state, &frame, &caller, &d, done, None, &[]).await
}

/// The reporter's full phone number, shown once on its own page (and audited).
pub async fn phone(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, &format!("/demands/{id}"), Some(&caller));
    let Some(id) = parse_id(&id) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let Some(form) = small_form(req).await else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    if !auth::same(field(&form, "csrf"), &frame.csrf) || frame.csrf.is_empty() {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    match crate::api::demands::reveal_reporter_phone(&state, &caller, id).await {
        Ok(phone) => {
            let mut r = frame.render(&state, "phone.html", context! { id, phone });
            // Never cached: the number is shown to this person, this once.
            r.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => failed(&state, &frame, e),
    }
}

/// One step of the loop, from one of the page's forms.
pub async fn act(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let headers = req.headers().clone();
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, &format!("/demands/{id}"), Some(&caller));
    let lang = frame.lang;
    let Some(id) = parse_id(&id) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let Some(form) = small_form(req).await else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    if !auth::same(field(&form, "csrf"), &frame.csrf) || frame.csrf.is_empty() {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let d = match visible_demand(&state, &caller, id).await {
        Ok(d) => d,
        Err(e) => return failed(&state, &frame, e),
    };
    let name = field(&form, "action").to_string();
    let number = |k: &str| -> Result<Option<i64>, Problem> {
        match opt(&form, k) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .trim_start_matches('#')
                .parse::<i64>()
                .map(Some)
                .map_err(|_| {
                    explain(
                        lang,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_field",
                        k,
                        "must be a number",
                    )
                }),
        }
    };
    let outcome: Result<(), Problem> = async {
        let unit = number("unit_id")?;
        let into = number("into")?;
        let by = step_by(&state, &caller)
            .await
            .map_err(|e| from_api(lang, e).unwrap_or_else(|e| server_problem(lang, e)))?;
        let action = parse_action(
            &name,
            opt(&form, "urgency"),
            opt(&form, "category"),
            opt(&form, "deadline"),
            unit,
            into,
            Some(field(&form, "text")),
            Some(field(&form, "reason")),
            opt(&form, "note"),
        )
        .map_err(|e| from_api(lang, e).unwrap_or_else(|e| server_problem(lang, e)))?;
        check_merge_target(&state, &caller, &action)
            .await
            .map_err(|e| from_api(lang, e).unwrap_or_else(|e| server_problem(lang, e)))?;
        state
            .desk
            .act(id, by, action)
            .await
            .map(|_| ())
            .map_err(|e| from_store(lang, e).unwrap_or_else(|e| server_problem(lang, e)))
    }
    .await;
    // An accepted sentinel report earns its rider points (`api::points`).
    state.rewards.kick();
    match outcome {
        Ok(()) => see_other(&format!("/demands/{id}?done={name}")),
        Err(p) if p.status.is_server_error() => page_error(&state, &frame, p.status),
        Err(p) => {
            let d = state.store.demand(id).await.unwrap_or(d);
            render(&state, &frame, &caller, &d, None, Some(p), &form).await
        }
    }
}

/// A failure of the server itself, carried as a problem so the caller shows the error
/// page (the detail stays in the log).
fn server_problem(lang: Lang, e: ApiError) -> Problem {
    Problem {
        status: e.status,
        message: tr(lang, "error"),
        detail: String::new(),
        field: None,
    }
}

/// The reporter, signed in, rates the answer from the demand's page.
pub async fn rate(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let headers = req.headers().clone();
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, &format!("/demands/{id}"), Some(&caller));
    let lang = lang(&headers);
    let Some(id) = parse_id(&id) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let Some(form) = small_form(req).await else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    if !auth::same(field(&form, "csrf"), &frame.csrf) || frame.csrf.is_empty() {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let d = match visible_demand(&state, &caller, id).await {
        Ok(d) => d,
        Err(e) => return failed(&state, &frame, e),
    };
    if d.reporter_account_id != Some(caller.account.id) {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let result = match Rating::parse(field(&form, "rating")) {
        Err(v) => Err(explain(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            v.code,
            &v.field,
            &v.message,
        )),
        Ok(r) => {
            let comment = opt(&form, "comment").map(str::to_string);
            state
                .desk
                .rate(id, caller.actor().0, r, comment)
                .await
                .map(|_| ())
                .map_err(|e| from_store(lang, e).unwrap_or_else(|e| server_problem(lang, e)))
        }
    };
    match result {
        Ok(()) => see_other(&format!("/demands/{id}?done=rate")),
        Err(p) if p.status.is_server_error() => page_error(&state, &frame, p.status),
        Err(p) => {
            let d = state.store.demand(id).await.unwrap_or(d);
            render(&state, &frame, &caller, &d, None, Some(p), &form).await
        }
    }
}

/// Live changes of a demand the caller may see (the page offers a reload).
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(id) = parse_id(&id) else {
        return ApiError::not_found("demand").into_response();
    };
    match visible_demand(&state, &caller, id).await {
        Ok(d) => demand_stream(state, d).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A photo of a demand the caller may see.
pub async fn photo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, photo)): Path<(String, String)>,
) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, "/demands", Some(&caller));
    let (Some(id), Some(photo)) = (parse_id(&id), parse_id(&photo)) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let result = async {
        visible_demand(&state, &caller, id).await?;
        photo_response(&state, id, photo).await
    }
    .await;
    result.unwrap_or_else(|e| failed(&state, &frame, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_steps_of_the_callers_units_are_offered() {
        let mut d = Standing {
            status: Status::Received,
            owner: 7,
            handler: None,
            transfer_to: None,
        };
        let mine = Some(vec![7]);
        let other = Some(vec![8]);
        assert_eq!(
            available_actions(d, &mine),
            ["assess", "transfer", "merge", "reject"]
        );
        assert!(available_actions(d, &other).is_empty());
        d.status = Status::Assessed;
        assert!(available_actions(d, &mine).contains(&"assign"));
        d.status = Status::Assigned;
        d.handler = Some(8);
        assert!(available_actions(d, &mine).is_empty());
        assert_eq!(available_actions(d, &other), ["start", "answer", "return"]);
        assert_eq!(available_actions(d, &None), ["start", "answer", "return"]);
        d.status = Status::Closed;
        assert!(available_actions(d, &None).is_empty());
    }
}
