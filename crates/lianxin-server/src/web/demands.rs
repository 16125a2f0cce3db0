//! The pages of the demand closed loop (收集—研判—落实—反馈).
//!
//! A resident raises a demand on `/submit` or the one-tap repair form `/repair`, keeps
//! the tracking link `/t/{token}` (which updates live over server-sent events) and rates
//! the answer there; a signed-in resident also finds their demands on `/my/demands`.
//! Staff work the queue on `/demands` and take the loop's steps on `/demands/{id}`;
//! officials read the three rates on `/dashboard/rates` and export them; administrators
//! set routing rules, time limits and holiday calendars on `/admin/loop`.
//!
//! Every page goes through the same desk and the same visibility rules as the JSON API
//! (`crate::api::demands`), so a page cannot show or do more than the API allows. Pages
//! work without JavaScript; two small inline scripts only add the live progress and the
//! ticking deadline clocks.
//!
//! This file holds what the pages share: labels in both languages, the deadline clock,
//! the step indicator, how refusals are explained, and the CSRF token of the forms that
//! work without an account.

mod admin;
pub(super) mod intake;
mod rates;
mod track;
mod work;

use super::{add_cookie, lang_of, page_error, Frame};
use crate::api::demands::caller_units;
use crate::auth::{self, Caller, PRELOGIN_COOKIE};
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use lianxin_domain::calendar::SHANGHAI;
use lianxin_domain::demand::{Rating, Status, Urgency};
use lianxin_domain::intake::{Channel, DemandKind};
use lianxin_domain::pii::random_token;
use lianxin_domain::ValidationError;
use lianxin_store::demands::Demand;
use lianxin_store::StoreError;
use minijinja::{context, Value};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    let upload = DefaultBodyLimit::max(crate::api::demands::SUBMIT_BODY_LIMIT);
    Router::new()
        .route(
            "/submit",
            get(intake::submit_form).post(intake::submit).layer(upload),
        )
        .route(
            "/repair",
            get(intake::repair_form).post(intake::repair).layer(upload),
        )
        .route("/t/{token}", get(track::page))
        .route("/t/{token}/rating", post(track::rate))
        .route("/my/demands", get(track::mine))
        .route("/demands", get(work::queue))
        .route("/demands/{id}", get(work::page))
        .route("/demands/{id}/act", post(work::act))
        .route("/demands/{id}/rating", post(work::rate))
        .route("/demands/{id}/phone", post(work::phone))
        .route("/demands/{id}/stream", get(work::stream))
        .route("/demands/{id}/photos/{photo}", get(work::photo))
        .route("/dashboard/rates", get(rates::page))
        .route("/dashboard/rates.csv", get(rates::csv))
        .route("/dashboard/rates.xlsx", get(rates::xlsx))
        .route("/admin/loop", get(admin::page))
        .route("/admin/loop/rules", post(admin::add_rule))
        .route("/admin/loop/rules/{id}/delete", post(admin::delete_rule))
        .route("/admin/loop/limits", post(admin::set_limit))
        .route("/admin/loop/calendar", post(admin::set_calendar))
}

// ----- who is asking -----

/// The signed-in caller of a page that also works without an account.
async fn optional_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Caller>, Response> {
    // Pages use sessions only; bearer tokens are for the API.
    let mut h = headers.clone();
    h.remove(header::AUTHORIZATION);
    auth::resolve(state, &h)
        .await
        .map_err(|e| e.into_response())
}

/// The CSRF token of a form that works without an account, and the pre-login cookie it
/// is bound to (as on the login form). A signed-in caller's forms use their session's
/// token instead, so that `None` comes back for the cookie.
fn public_csrf(
    state: &AppState,
    headers: &HeaderMap,
    caller: Option<&Caller>,
) -> (String, Option<String>) {
    if let Some(token) = caller.and_then(|c| c.csrf_token(&state.pii)) {
        return (token, None);
    }
    let pre = auth::cookie(headers, PRELOGIN_COOKIE)
        .filter(|v| v.len() >= 16 && v.len() <= 64)
        .unwrap_or_else(|| random_token("", 18));
    (auth::csrf_for(&state.pii, "public-form", &pre), Some(pre))
}

/// Whether a public form's CSRF token is the one [`public_csrf`] gave this visitor.
fn public_csrf_ok(
    state: &AppState,
    headers: &HeaderMap,
    caller: Option<&Caller>,
    given: &str,
) -> bool {
    let expected = match caller.and_then(|c| c.csrf_token(&state.pii)) {
        Some(t) => t,
        None => match auth::cookie(headers, PRELOGIN_COOKIE).filter(|v| v.len() >= 16) {
            Some(pre) => auth::csrf_for(&state.pii, "public-form", &pre),
            None => return false,
        },
    };
    !given.is_empty() && auth::same(given, &expected)
}

/// Sets the pre-login cookie a public form's token is bound to.
fn keep_pre_cookie(state: &AppState, headers: &HeaderMap, resp: &mut Response, pre: Option<&str>) {
    if let Some(pre) = pre {
        add_cookie(state, headers, resp, PRELOGIN_COOKIE, pre, Some(3600 * 24));
    }
}

/// The units a staff caller acts for, as the desk's `StepBy` has them; `None` is every
/// unit. Callers without a staff role act for none.
async fn acting_units(state: &AppState, c: &Caller) -> Result<Option<Vec<i64>>, ApiError> {
    if !c
        .role()
        .allows(lianxin_domain::role::Permission::HandleDemands)
    {
        return Ok(Some(Vec::new()));
    }
    caller_units(state, c).await
}

fn acts_for(units: &Option<Vec<i64>>, unit: Option<i64>) -> bool {
    match (units, unit) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(list), Some(u)) => list.contains(&u),
    }
}

// ----- labels -----

/// The visitor's texts. A missing key shows the key rather than failing the page (the
/// tests check every key used exists).
pub(super) fn tr(lang: Lang, key: &str) -> String {
    i18n::table(lang)
        .get(key)
        .map(|s| s.to_string())
        .unwrap_or_else(|| key.to_string())
}

pub(super) fn status_label(lang: Lang, s: Status) -> &'static str {
    match lang {
        Lang::Zh => s.label_zh(),
        Lang::En => s.label_en(),
    }
}

fn kind_label(lang: Lang, k: DemandKind) -> String {
    match lang {
        Lang::Zh => k.label_zh().to_string(),
        Lang::En => tr(lang, &format!("kind_{}", k.as_str())),
    }
}

fn channel_label(lang: Lang, c: Channel) -> String {
    match lang {
        Lang::Zh => c.label_zh().to_string(),
        Lang::En => tr(lang, &format!("channel_{}", c.as_str())),
    }
}

fn urgency_label(lang: Lang, u: Urgency) -> String {
    match lang {
        Lang::Zh => u.label_zh().to_string(),
        Lang::En => tr(lang, &format!("urgency_{}", u.as_str())),
    }
}

fn rating_label(lang: Lang, r: Rating) -> String {
    match lang {
        Lang::Zh => r.label_zh().to_string(),
        Lang::En => tr(lang, &format!("rating_{}", r.as_str())),
    }
}

/// What a history entry's action is called; unknown actions show their code.
fn action_label(lang: Lang, action: &str) -> String {
    let key = format!("ev_{action}");
    let text = tr(lang, &key);
    if text == key {
        action.to_string()
    } else {
        text
    }
}

/// The category's name in the visitor's language.
fn category_name(state: &AppState, lang: Lang, code: &str, fallback: &str) -> String {
    match (lang, state.desk.category(code)) {
        (Lang::En, Ok(c)) => c.name_en,
        (Lang::Zh, Ok(c)) => c.name_zh,
        _ => fallback.to_string(),
    }
}

/// The active categories as `{code, name}` for a select.
pub(super) fn category_options(state: &AppState, lang: Lang) -> Vec<Value> {
    state
        .desk
        .categories()
        .into_iter()
        .map(|c| {
            let name = if lang == Lang::Zh {
                c.name_zh
            } else {
                c.name_en
            };
            context! { code => c.code, name }
        })
        .collect()
}

fn status_options(lang: Lang) -> Vec<Value> {
    Status::ALL
        .iter()
        .map(|s| context! { code => s.as_str(), name => status_label(lang, *s) })
        .collect()
}

fn urgency_options(lang: Lang) -> Vec<Value> {
    Urgency::ALL
        .iter()
        .map(|u| context! { code => u.as_str(), name => urgency_label(lang, *u) })
        .collect()
}

/// Status code → label, as JSON for the live page's script.
fn status_labels_json(lang: Lang) -> String {
    let map: BTreeMap<&str, &str> = Status::ALL
        .iter()
        .map(|s| (s.as_str(), status_label(lang, *s)))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

// ----- time -----

/// An instant as Beijing wall time, for people.
pub(super) fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&SHANGHAI)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// An instant for `<time datetime>` and scripts.
fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration as days and hours, hours and minutes, or minutes.
fn span_text(lang: Lang, ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let (fmt, a, b) = if d > 0 {
        ("clock_dh", d, h)
    } else if h > 0 {
        ("clock_hm", h, m)
    } else {
        ("clock_m", m, 0)
    };
    tr(lang, fmt)
        .replace("{a}", &a.to_string())
        .replace("{b}", &b.to_string())
}

/// How a deadline stands at `now`: the text ("剩余 2天3小时", "已超时 5小时") and a
/// colour by the share of the step's time that is left — red once overdue, amber once
/// the desk's warning point has passed, green before.
fn clock(
    lang: Lang,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    deadline: DateTime<Utc>,
    warn_fraction: f64,
) -> Value {
    let left = deadline.signed_duration_since(now).num_milliseconds();
    let total = deadline
        .signed_duration_since(start)
        .num_milliseconds()
        .max(1);
    let (text, class) = if left <= 0 {
        (
            tr(lang, "clock_over").replace("{}", &span_text(lang, -left)),
            "red",
        )
    } else {
        let share = left as f64 / total as f64;
        let class = if share < 1.0 - warn_fraction {
            "amber"
        } else {
            "green"
        };
        (
            tr(lang, "clock_left").replace("{}", &span_text(lang, left)),
            class,
        )
    };
    context! {
        text, class,
        deadline => iso(deadline),
        start => iso(start),
        local => local_time(deadline),
    }
}

/// The deadline clock of a demand, or none once the loop is over.
fn demand_clock(state: &AppState, lang: Lang, d: &Demand, now: DateTime<Utc>) -> Option<Value> {
    (!d.status.is_terminal()).then(|| {
        clock(
            lang,
            now,
            d.step_at,
            d.deadline,
            state.desk.config().warn_fraction,
        )
    })
}

/// What the deadline-clock script needs: the server's clock and the texts.
fn clock_config(state: &AppState, lang: Lang) -> Value {
    context! {
        now_ms => state.desk.now().timestamp_millis(),
        warn => state.desk.config().warn_fraction,
        left => tr(lang, "clock_left"),
        over => tr(lang, "clock_over"),
        dh => tr(lang, "clock_dh"),
        hm => tr(lang, "clock_hm"),
        m => tr(lang, "clock_m"),
    }
}

// ----- the step indicator -----

/// The six steps a resident sees, in order.
const STEPS: [Status; 6] = [
    Status::Received,
    Status::Assessed,
    Status::Assigned,
    Status::InProgress,
    Status::Answered,
    Status::Closed,
];

/// The step indicator for a status: each step done, current or still to come. A
/// rejected or merged demand left the steps; none is current.
fn steps(lang: Lang, status: Status) -> Vec<Value> {
    let at = STEPS.iter().position(|s| *s == status);
    STEPS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let state = match at {
                Some(a) if i < a => "done",
                Some(a) if i == a && status == Status::Closed => "done",
                Some(a) if i == a => "current",
                _ => "todo",
            };
            context! { code => s.as_str(), label => status_label(lang, *s), state }
        })
        .collect()
}

// ----- refusals -----

/// A refused input or step, explained on the page in the visitor's language.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    pub(super) status: StatusCode,
    pub(super) message: String,
    /// The rule's own words, for the curious and for support.
    detail: String,
    field: Option<String>,
}

fn field_label(lang: Lang, field: &str) -> String {
    let key = format!("field_{field}");
    let text = tr(lang, &key);
    if text == key {
        field.to_string()
    } else {
        text
    }
}

/// Explains a refusal by its stable code and field.
fn explain(lang: Lang, status: StatusCode, code: &str, field: &str, detail: &str) -> Problem {
    let t = |k: &str| tr(lang, k);
    let label = field_label(lang, field);
    // A rule with its own explanation (`err_visit_in_future` …) says it best.
    let own = format!("err_{code}");
    let own_text = t(&own);
    let message = match (code, field) {
        ("wrong_state", _) => t("err_wrong_state"),
        ("not_yours", _) => t("err_not_yours"),
        ("deadline_in_past", _) => t("err_deadline_past"),
        ("forbidden" | "csrf_failed", _) => t("err_forbidden"),
        ("conflict", _) => t("err_conflict"),
        ("not_found", _) => t("error_404"),
        ("not_an_image", _) => t("err_not_an_image"),
        ("photo_too_large" | "payload_too_large", _) => t("err_photo_too_large"),
        ("too_many_photos", _) => t("err_too_many_photos"),
        ("required", _) => t("err_required").replace("{}", &label),
        ("too_long", _) => t("err_too_long").replace("{}", &label),
        ("unroutable", _) => t("err_unroutable"),
        _ if own_text != own => own_text,
        (_, "place" | "lat") => t("err_place"),
        (_, "phone" | "reporter_phone") => t("err_phone"),
        (_, "category") => t("err_category"),
        (_, "kind") => t("err_kind"),
        (_, "unit" | "unit_id") => t("err_unit"),
        (_, "into") => t("err_into"),
        (_, "deadline") => t("err_deadline"),
        (_, "rating") => t("err_rating"),
        (_, "time_limit") => t("err_time_limit"),
        (_, "from" | "to") => t("err_period"),
        (_, "group") => t("err_group"),
        (_, "status") => t("err_filter"),
        (_, "urgency") => t("err_urgency"),
        _ if !field.is_empty() => format!("{label}: {detail}"),
        _ => detail.to_string(),
    };
    Problem {
        status,
        message,
        detail: detail.to_string(),
        field: (!field.is_empty()).then(|| field.to_string()),
    }
}

fn from_validation(lang: Lang, v: &ValidationError) -> Problem {
    let status = ApiError::from(v.clone()).status;
    explain(lang, status, v.code, &v.field, &v.message)
}

/// A store or desk error as a problem to show, or `None` for a failure of the server
/// itself (shown as the error page, with the detail only in the log).
pub(super) fn from_store(lang: Lang, e: StoreError) -> Result<Problem, ApiError> {
    match e {
        StoreError::Invalid(v) => Ok(from_validation(lang, &v)),
        other => from_api(lang, ApiError::from(other)),
    }
}

pub(super) fn from_api(lang: Lang, e: ApiError) -> Result<Problem, ApiError> {
    if e.status.is_server_error() {
        return Err(e);
    }
    Ok(explain(
        lang,
        e.status,
        e.reason.unwrap_or(e.code),
        e.field.as_deref().unwrap_or(""),
        &e.message,
    ))
}

pub(super) fn problem_value(p: &Problem) -> Value {
    context! { message => p.message.clone(), detail => p.detail.clone(), field => p.field.clone() }
}

/// An error page for a failure that is not the visitor's to fix.
pub(super) fn failed(state: &AppState, frame: &Frame, e: ApiError) -> Response {
    page_error(state, frame, e.status)
}

/// A 303 to `to`: the redirect-after-POST that keeps a reload from posting again.
pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Reads the urlencoded body of a small form; `None` if unreadable or too large.
pub(super) async fn small_form(req: axum::extract::Request) -> Option<Vec<(String, String)>> {
    super::read_form(req, 256 * 1024).await
}

pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    super::field(form, name)
}

/// An optional form field: `None` when blank.
pub(super) fn opt<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    Some(field(form, name)).filter(|v| !v.trim().is_empty())
}

/// The visitor's language from the cookie.
fn lang(headers: &HeaderMap) -> Lang {
    lang_of(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    #[test]
    fn clocks_count_down_and_colour_by_the_share_left() {
        let start = at(0, 0);
        let deadline = start + chrono::Duration::days(3);
        let c = clock(
            Lang::Zh,
            at(0, 0) + chrono::Duration::hours(3),
            start,
            deadline,
            0.8,
        );
        assert_eq!(c.get_attr("text").unwrap().to_string(), "剩余 2天21小时");
        assert_eq!(c.get_attr("class").unwrap().to_string(), "green");
        let late = clock(
            Lang::Zh,
            deadline - chrono::Duration::hours(5),
            start,
            deadline,
            0.8,
        );
        assert_eq!(late.get_attr("class").unwrap().to_string(), "amber");
        assert_eq!(
            late.get_attr("text").unwrap().to_string(),
            "剩余 5小时0分钟"
        );
        let over = clock(
            Lang::En,
            deadline + chrono::Duration::hours(5),
            start,
            deadline,
            0.8,
        );
        assert_eq!(over.get_attr("class").unwrap().to_string(), "red");
        assert_eq!(over.get_attr("text").unwrap().to_string(), "5h 0m overdue");
        let soon = clock(
            Lang::En,
            deadline - chrono::Duration::minutes(7),
            start,
            deadline,
            0.8,
        );
        assert_eq!(soon.get_attr("text").unwrap().to_string(), "7m left");
    }

    #[test]
    fn steps_mark_done_current_and_todo() {
        let s = steps(Lang::Zh, Status::InProgress);
        let states: Vec<String> = s
            .iter()
            .map(|v| v.get_attr("state").unwrap().to_string())
            .collect();
        assert_eq!(states, ["done", "done", "done", "current", "todo", "todo"]);
        let closed = steps(Lang::Zh, Status::Closed);
        assert!(closed
            .iter()
            .all(|v| v.get_attr("state").unwrap().to_string() == "done"));
        let rejected = steps(Lang::Zh, Status::Rejected);
        assert!(rejected
            .iter()
            .all(|v| v.get_attr("state").unwrap().to_string() == "todo"));
    }

    #[test]
    fn refusals_are_explained_in_the_visitors_language() {
        let p = explain(
            Lang::Zh,
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "description",
            "description must not be empty",
        );
        assert_eq!(p.message, "请填写诉求内容。");
        let p = explain(
            Lang::En,
            StatusCode::CONFLICT,
            "wrong_state",
            "action",
            "assess is not allowed while the demand is answered",
        );
        assert!(p.message.contains("changed"), "{}", p.message);
    }

    /// Every `t.key` the loop's templates use exists, in both languages.
    #[test]
    fn templates_use_only_known_texts() {
        let zh = i18n::table(Lang::Zh);
        for (name, src) in super::super::TEMPLATES {
            let mut rest = *src;
            while let Some(i) = rest.find("t.") {
                let before = rest[..i].chars().last();
                rest = &rest[i + 2..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let key: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !key.is_empty() {
                    assert!(zh.contains_key(key.as_str()), "{name} uses t.{key}");
                }
            }
        }
        for key in [
            "clock_left",
            "clock_over",
            "clock_dh",
            "clock_hm",
            "clock_m",
            "err_wrong_state",
            "err_not_yours",
            "err_deadline_past",
            "err_forbidden",
            "err_conflict",
            "err_not_an_image",
            "err_photo_too_large",
            "err_too_many_photos",
            "err_required",
            "err_too_long",
            "err_place",
            "err_phone",
            "err_category",
            "err_kind",
            "err_unit",
            "err_into",
            "err_deadline",
            "err_rating",
            "err_time_limit",
            "err_period",
            "err_group",
            "err_filter",
            "err_urgency",
        ] {
            assert!(zh.contains_key(key), "missing {key}");
        }
        for k in DemandKind::ALL {
            assert!(zh.contains_key(format!("kind_{}", k.as_str()).as_str()));
        }
        for c in Channel::ALL {
            assert!(zh.contains_key(format!("channel_{}", c.as_str()).as_str()));
        }
        for u in Urgency::ALL {
            assert!(zh.contains_key(format!("urgency_{}", u.as_str()).as_str()));
        }
        for r in Rating::ALL {
            assert!(zh.contains_key(format!("rating_{}", r.as_str()).as_str()));
        }
    }
}
